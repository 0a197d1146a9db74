"""The dashboard's HTTP layer without an edge behind it: the cookie's attributes, CSRF on every
POST (checked before any handler runs, so no API call is made), redirects to the login page and
the security headers. What needs the admin API is proved end to end (tests/e2e/test_dashboard*.py).
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestClient, TestServer

from switchboard_dashboard import server
from switchboard_dashboard.sessions import COOKIE, SessionStore
from switchboard_dashboard.settings import DashboardSettings

# Nothing listens here: a handler that called the edge would answer 503, not what the tests expect.
NO_EDGE = "http://127.0.0.1:9"


@pytest.fixture
async def app():
    store = SessionStore(3600, 100)
    client = TestClient(TestServer(server.build(DashboardSettings(edge_url=NO_EDGE), store)))
    await client.start_server()
    yield client, store
    await client.close()


def _cookie(resp) -> SimpleCookie:
    jar = SimpleCookie()
    for header in resp.headers.getall("set-cookie", []):
        jar.load(header)
    return jar


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


async def test_the_login_page_sets_a_strict_httponly_cookie_scoped_to_ui(app):
    client, store = app
    resp = await client.get("/ui/login")
    assert resp.status == 200
    morsel = _cookie(resp)[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/ui"
    assert not morsel["secure"]  # plain HTTP here
    session = store.get(morsel.value)
    assert session is not None and not session.logged_in
    assert _csrf(await resp.text()) == session.csrf_token


async def test_the_cookie_is_secure_when_the_edge_says_the_request_came_over_tls(app):
    client, _ = app
    resp = await client.get("/ui/login", headers={"x-forwarded-proto": "https"})
    assert _cookie(resp)[COOKIE]["secure"]


async def test_a_post_without_the_csrf_token_is_403(app):
    client, store = app
    session = store.start("sk-sb-logged-in")
    client.session.cookie_jar.update_cookies({COOKIE: session.session_id})
    for path in ("/ui/keys", "/ui/keys/key_1/revoke", "/ui/keys/key_1/rotate", "/ui/logout"):
        for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": ""}):
            resp = await client.post(path, data={"name": "x", **form}, allow_redirects=False)
            assert resp.status == 403, (path, form)
            assert "did not come from this dashboard" in await resp.text()
    assert store.get(session.session_id) is session  # the forged logout did nothing


async def test_a_login_post_needs_the_login_forms_token(app):
    client, _ = app
    resp = await client.post("/ui/login", data={"api_key": "sk-sb-x"}, allow_redirects=False)
    assert resp.status == 403  # no session at all
    await client.get("/ui/login")
    resp = await client.post("/ui/login", data={"api_key": "sk-sb-x", "csrf_token": "nope"},
                             allow_redirects=False)
    assert resp.status == 403


async def test_a_csrf_token_of_another_session_is_refused(app):
    client, store = app
    mine, theirs = store.start("sk-sb-mine"), store.start("sk-sb-theirs")
    client.session.cookie_jar.update_cookies({COOKIE: mine.session_id})
    resp = await client.post("/ui/logout", data={"csrf_token": theirs.csrf_token}, allow_redirects=False)
    assert resp.status == 403


async def test_logout_with_the_token_ends_the_session(app):
    client, store = app
    session = store.start("sk-sb-logged-in")
    client.session.cookie_jar.update_cookies({COOKIE: session.session_id})
    resp = await client.post("/ui/logout", data={"csrf_token": session.csrf_token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["location"] == "/ui/login"
    assert store.get(session.session_id) is None
    assert _cookie(resp)[COOKIE].value == ""  # the browser drops it too


@pytest.mark.parametrize("path", ["/ui/", "/ui/keys", "/ui/usage", "/ui/budgets", "/ui/guardrails",
                                  "/ui/routing", "/ui/keys/created"])
async def test_pages_need_a_login(app, path):
    client, store = app
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["location"] == "/ui/login"
    anonymous = store.start()  # a login form's session is not a login
    client.session.cookie_jar.update_cookies({COOKIE: anonymous.session_id})
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["location"] == "/ui/login"


async def test_an_expired_or_unknown_session_is_not_logged_in(app):
    client, _ = app
    client.session.cookie_jar.update_cookies({COOKIE: "made-up"})
    resp = await client.get("/ui/keys", allow_redirects=False)
    assert resp.status == 303


async def test_every_answer_carries_the_security_headers(app):
    client, _ = app
    for path in ("/ui/login", "/ui/keys", "/ui/healthz"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp


async def test_a_wrong_key_when_the_edge_is_down_says_so_without_detail(app):
    client, _ = app
    page = await client.get("/ui/login")
    resp = await client.post("/ui/login", data={"api_key": "sk-sb-whatever", "csrf_token": _csrf(await page.text())})
    assert resp.status == 503
    text = await resp.text()
    assert "cannot be reached" in text and "sk-sb-whatever" not in text


async def test_the_stylesheet_ships_with_the_package(app):
    client, _ = app
    resp = await client.get("/ui/static/style.css")
    assert resp.status == 200 and "font-family" in await resp.text()
