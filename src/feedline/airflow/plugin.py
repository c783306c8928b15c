"""The feedline Airflow plugin: the metrics listener, and the dashboard inside the Airflow UI.

Registered through the `airflow.plugins` entry point of the feedline package, so any Airflow that
installs feedline loads it (scheduler, workers, API server); `$AIRFLOW_HOME/plugins` works as well
(a file holding `from feedline.airflow.plugin import FeedlinePlugin`). The dashboard's FastAPI app is
built only when the API server asks for it: task processes load this plugin for its listener and
never import the web stack.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from feedline.airflow.listener import listener

URL_PREFIX = "/feedline"


class FeedlinePlugin(AirflowPlugin):
    name = "feedline"
    listeners = [listener]
    external_views = [
        {
            "name": "Feeds",
            "href": f"{URL_PREFIX}/",
            "url_route": "feedline",
            "destination": "nav",
            "category": "browse",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from feedline.dashboard.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "feedline dashboard"}]
