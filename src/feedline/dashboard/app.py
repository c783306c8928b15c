"""The dashboard's FastAPI app, mounted by the feedline plugin at `/feedline` in Airflow's API server.

Airflow serves a plugin's app without its own authentication, so every route here checks the caller
itself, the way Airflow's API does (`airflow.api_fastapi.core_api.security.get_user`): a bearer token,
or else the UI's session cookie, validated by the configured auth manager. No credentials: 401; an
invalid token: 403; and a user sees only the feeds whose DAG they may read. The page and its script
come from this package (no CDN, no network): charts are SVG drawn by `static/dashboard.js`.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
#: The page may load only what this app serves: no CDN, no third-party request, framed by Airflow only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'"
)


async def _user(request: Request) -> Any:
    """The caller as Airflow's API would see it (bearer token, else the `_token` session cookie)."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


Caller = Annotated[Any, Depends(_user)]


def _readable_feed(user: Any) -> Any:
    """A predicate: may `user` read the DAG of a feed (`feed_<name>`)?"""
    from airflow.api_fastapi.app import get_auth_manager

    dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    return lambda feed: f"feed_{feed}" in dag_ids


def summary(user: Any, hours: int) -> dict[str, Any]:
    """The figures of every feed the user may read, from the warehouse (opened read-only)."""
    from feedline.contract import load_feeds
    from feedline.dashboard.data import dashboard_data
    from feedline.errors import TerminalError, TransientError
    from feedline.settings import Settings
    from feedline.warehouse import connect_warehouse

    settings = Settings.from_env()
    declared = [feed.name for feed in load_feeds(settings.feeds_dir).feeds]
    allowed = _readable_feed(user)
    target = settings.warehouse
    if settings.warehouse_conn_id:
        from feedline.airflow.connections import warehouse_dsn

        target = warehouse_dsn(settings.warehouse_conn_id)
    try:
        warehouse = connect_warehouse(target, read_only=True, lock_timeout=5)
        return dashboard_data(warehouse, hours=hours, known_feeds=declared, allowed=allowed)
    except TransientError as exc:
        raise HTTPException(503, f"the warehouse is busy ({exc}); reload in a moment") from exc
    except TerminalError as exc:  # no warehouse yet (nothing loaded), or a wrong target
        from feedline.dashboard.data import FeedNumbers

        log.info("Dashboard without data: %s", exc)
        feeds = [FeedNumbers(name, []).as_dict() for name in sorted(declared) if allowed(name)]
        return {"window_hours": hours, "feeds": feeds, "notice": f"No data yet: {exc}"}


def create_app() -> FastAPI:
    app = FastAPI(title="feedline dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        """401/403 to a browser: a page that says how to log in; to a script: Airflow's JSON shape."""
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_login_page(request, str(exc.detail)), exc.status_code, headers=_headers())
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, user: Caller) -> HTMLResponse:
        """The dashboard page; its figures come from `api/summary`."""
        base = html.escape(f"{request.scope.get('root_path', '').rstrip('/')}/", quote=True)
        text = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{base}}", base)
        return HTMLResponse(text, headers=_headers())

    @app.get("/static/{name}")
    def asset(name: str, user: Caller) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return Response((STATIC / name).read_bytes(), media_type=ASSETS[name], headers=_headers())

    @app.get("/api/summary")
    def api_summary(user: Caller, hours: Annotated[int, Query(ge=1, le=720)] = 24) -> JSONResponse:
        """Per feed: files by state, rows loaded and latency p50/p95 per hour, quarantine rate, last
        failures with links to their task logs."""
        return JSONResponse(summary(user, hours), headers={"Cache-Control": "no-store"})

    return app


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _login_page(request: Request, detail: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    try:
        login = get_auth_manager().get_url_login()
    except Exception:
        login = "/auth/login"
    back = f"{request.scope.get('root_path', '')}/"
    target = html.escape(f"{login}?next={back}", quote=True)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>feedline: log in</title></head>"
        f"<body><h1>feedline dashboard</h1><p>{html.escape(detail)}: this page shows the feeds' data to "
        f"Airflow users only. <a href='{target}'>Log in to Airflow</a>, then open it again.</p></body></html>"
    )


app = create_app()
