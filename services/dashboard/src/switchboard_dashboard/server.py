"""Build and run the dashboard's HTTP server."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import jinja2
import structlog
from aiohttp import web

from switchboard_dashboard import pages, web as ui
from switchboard_dashboard.api import EdgeApi
from switchboard_dashboard.sessions import SessionStore
from switchboard_dashboard.settings import DashboardSettings

PACKAGE = Path(__file__).resolve().parent
log = structlog.get_logger("dashboard")


def build(settings: DashboardSettings, store: SessionStore | None = None) -> web.Application:
    app = web.Application(middlewares=[ui.security], client_max_size=64 * 1024)
    app[ui.SETTINGS] = settings
    app[ui.STORE] = store if store is not None else SessionStore(settings.session_ttl_seconds,
                                                                          settings.max_sessions)
    app[ui.TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
                                           autoescape=True)
    app.cleanup_ctx.append(_client)
    prefix = ui.PREFIX
    app.router.add_get(f"{prefix}/healthz", ui.healthz)
    app.router.add_get(f"{prefix}/", ui.index)
    app.router.add_get(f"{prefix}/login", ui.login_form)
    app.router.add_post(f"{prefix}/login", ui.login)
    app.router.add_post(f"{prefix}/logout", ui.logout)
    app.router.add_static(f"{prefix}/static/", PACKAGE / "static")
    pages.add_routes(app.router, prefix)
    return app


async def _client(app: web.Application):
    settings = app[ui.SETTINGS]
    # No cookie jar: the edge sets none, and one user's cookies must never reach another's call.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        app[ui.API] = EdgeApi(http, settings.edge_url, settings.api_timeout_seconds)
        yield


async def run(settings: DashboardSettings) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight."""
    # access_log off: the middleware logs each request, without its headers (cookies, keys).
    runner = web.AppRunner(build(settings), access_log=None, shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.http_port)
    await site.start()
    log.info("dashboard listening", host=settings.host, port=settings.http_port, edge=settings.edge_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("dashboard stopping")
    await runner.cleanup()
