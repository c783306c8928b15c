"""The feedline plugin as Airflow finds it in the tests, whether or not the package's entry point is
installed yet: a one-line file in the plugins folder stands in for the entry point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

SHIM = "feedline_plugin.py"


def entry_point_installed() -> bool:
    return any(ep.value.startswith("feedline.airflow.plugin") for ep in entry_points(group="airflow.plugins"))


def reload_plugins() -> None:
    """Forget the plugins and listeners this process already loaded (Airflow caches them on first use),
    so that the next task or DAG run picks up the plugins folder as it is now."""
    import airflow.listeners.listener as core_listener
    import airflow.plugins_manager as core_plugins
    import airflow.sdk.listener as sdk_listener
    import airflow.sdk.plugins_manager as sdk_plugins

    for cached in (
        core_plugins._get_plugins,
        core_plugins.get_fastapi_plugins,
        core_plugins._get_ui_plugins,
        core_listener.get_listener_manager,
        sdk_plugins._get_plugins,
        sdk_listener.get_listener_manager,
    ):
        cached.cache_clear()


@contextmanager
def feedline_plugin() -> Iterator[Path | None]:
    """The plugin registered for this process and the processes it starts; yields the stand-in file
    written into the plugins folder, or None when the entry point is installed."""
    from airflow import settings

    shim = None
    if not entry_point_installed():
        shim = Path(str(settings.PLUGINS_FOLDER)) / SHIM
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text("from feedline.airflow.plugin import FeedlinePlugin  # noqa: F401\n")
    reload_plugins()
    try:
        yield shim
    finally:
        if shim is not None:
            shim.unlink(missing_ok=True)
        reload_plugins()
