"""The aiohttp application: sessions, CSRF, security headers, login and logout.

Every page but /ui/login, /ui/healthz and /ui/static/ needs a logged-in session; every POST needs
the session's CSRF token in its form (else 403, before any handler runs). The session cookie is
HttpOnly, SameSite=Strict, Path=/ui, and Secure when the request came over TLS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
import structlog
from aiohttp import web

from switchboard_dashboard.api import ApiError, EdgeApi
from switchboard_dashboard.sessions import COOKIE, Session, SessionStore
from switchboard_dashboard.settings import DashboardSettings

PREFIX = "/ui"
PUBLIC = (f"{PREFIX}/login", f"{PREFIX}/healthz", f"{PREFIX}/static/")
# One message for every refused key: whether it is unknown, revoked or a member's is not said.
LOGIN_REFUSED = "That key cannot open the dashboard. Use an admin or tenant-admin key."
# No script at all, no framing, nothing loaded from elsewhere.
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

STORE = web.AppKey("store", SessionStore)
API = web.AppKey("api", EdgeApi)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SETTINGS = web.AppKey("settings", DashboardSettings)
_SESSION = web.RequestKey("session", Session)
log = structlog.get_logger("dashboard")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_tls(request: web.Request) -> bool:
    """TLS here or at the edge in front (Envoy sets x-forwarded-proto from its own listener)."""
    return request.secure or request.headers.get("x-forwarded-proto", "").lower() == "https"


def session_of(request: web.Request) -> Session:
    session: Session = request[_SESSION]
    return session


def set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(COOKIE, session.session_id, path=PREFIX, httponly=True, samesite="Strict",
                        secure=is_tls(request))


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session: Session | None = request.get(_SESSION)
    html = request.app[TEMPLATES].get_template(template).render(
        csrf_token=session.csrf_token if session else "", logged_in=bool(session and session.logged_in),
        prefix=PREFIX, **context)
    return web.Response(text=html, status=status, content_type="text/html")


@web.middleware
async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:  # the redirects
        exc.headers.update(SECURITY_HEADERS)
        log.info("ui request", method=request.method, path=request.path, status=exc.status)
        raise
    response.headers.update(SECURITY_HEADERS)
    log.info("ui request", method=request.method, path=request.path, status=response.status)
    return response


def see_other(location: str) -> web.Response:
    """A 303 that can carry a cookie (an HTTPException returned, not raised, is deprecated)."""
    return web.Response(status=303, headers={"location": location})


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    store = request.app[STORE]
    session = store.get(request.cookies.get(COOKIE))
    if session is not None:
        request[_SESSION] = session
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf_token")
        if session is None or not session.csrf_ok(token if isinstance(token, str) else None):
            return render(request, "error.html", status=403, message=(
                "This form has expired or did not come from this dashboard. Reload the page and try again."))
    if not request.path.startswith(PUBLIC) and (session is None or not session.logged_in):
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status == 401 and session is not None:  # the key was revoked or expired meanwhile
            store.end(session.session_id)
            raise web.HTTPSeeOther(f"{PREFIX}/login") from None
        return render(request, "error.html", status=exc.status if 400 <= exc.status < 600 else 502,
                      message=exc.message)


async def login_form(request: web.Request) -> web.Response:
    session: Session | None = request.get(_SESSION)
    if session is not None and session.logged_in:
        raise web.HTTPSeeOther(f"{PREFIX}/keys")
    fresh = session is None
    if session is None:  # a session for the form alone, so the login POST has a CSRF token too
        session = request[_SESSION] = request.app[STORE].start()
    response = render(request, "login.html")
    if fresh:
        set_cookie(request, response, session)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    key = str(form.get("api_key", "")).strip()
    store = request.app[STORE]
    try:
        # Listing keys needs an admin or tenant-admin key: the same check auth makes for the API.
        allowed = bool(key) and key.isascii() and key.isprintable() and await _manages_keys(request, key)
    except ApiError as exc:
        if exc.status < 500:
            raise
        return render(request, "login.html", status=503, error="The gateway cannot be reached now; try again.")
    if not allowed:
        return render(request, "login.html", status=401, error=LOGIN_REFUSED)
    store.end(session_of(request).session_id)  # a new id at login: a planted id never logs in
    session = request[_SESSION] = store.start(api_key=key)
    response = see_other(f"{PREFIX}/keys")
    set_cookie(request, response, session)
    return response


async def _manages_keys(request: web.Request, key: str) -> bool:
    try:
        await request.app[API].call(key, "GET", "/api/keys", params={"page_size": 1})
    except ApiError as exc:
        if exc.status in (400, 401, 403, 404):
            return False
        raise
    return True


async def logout(request: web.Request) -> web.Response:
    request.app[STORE].end(session_of(request).session_id)
    response = see_other(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def index(_request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(f"{PREFIX}/keys")
