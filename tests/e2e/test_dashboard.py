"""The dashboard through the real edge and stack, as a browser without JavaScript uses it: form
posts with the CSRF token, the session cookie, redirects. The same flows run in headless Chromium
in test_dashboard_browser.py; this file needs no browser, so CI without one still proves them."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.e2e.dashboard_client import SECRET, Browser, key_ids
from tests.e2e.test_keys_lifecycle import call, chat, ok, wait_until


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def browser(stack):
    b = Browser(stack.edge_url)
    yield b
    b.close()


@pytest.fixture(scope="module")
def two_tenants(stack):
    """Two tenants, each with a tenant admin and a member key that made one request:
    {tenant: (admin secret, member key id)}."""
    made = {}
    for tenant in (unique("ui-a"), unique("ui-b")):
        ok(call(stack, "POST", "/api/tenants", json={"tenant_id": tenant}))
        admin = ok(call(stack, "POST", "/api/keys", json={"name": "boss", "tenant_id": tenant,
                                                         "role": "tenant_admin"}))
        member = ok(call(stack, "POST", "/api/keys", json={"name": "app", "tenant_id": tenant}))
        assert ok(chat(stack, member["secret"]))
        made[tenant] = (admin["secret"], member["key"]["key_id"])
    return made


def test_the_edge_serves_the_dashboard_at_ui(stack):
    redirect = httpx.get(stack.edge_url + "/ui", follow_redirects=False)
    assert redirect.headers["location"].endswith(f":{stack.config.edge_port}/ui/")
    page = httpx.get(stack.edge_url + "/ui/", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/ui/login") and "Log in" in page.text
    css = httpx.get(stack.edge_url + "/ui/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    unknown = httpx.get(stack.edge_url + "/nowhere")
    assert unknown.status_code == 404 and "/ui/" in unknown.json()["error"]["message"]


def test_the_session_cookie_is_httponly_strict_and_scoped_to_ui(stack, browser):
    resp = browser.login(stack.master_key)
    assert str(resp.url).endswith("/ui/keys")
    (login_answer,) = [r for r in resp.history if r.request.method == "POST"]
    cookie = login_answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert stack.master_key not in cookie and stack.master_key not in resp.text


def test_wrong_and_member_keys_get_the_login_page_again_without_detail(stack, browser):
    member = ok(call(stack, "POST", "/api/keys", json={"name": unique("member")}))["secret"]
    answers = [browser.login(key) for key in ("sk-sb-" + "x" * 49, member, "not even a key")]
    assert {r.status_code for r in answers} == {401}
    texts = {re.search(r'class="error"[^>]*>([^<]+)<', r.text)[1] for r in answers}
    assert len(texts) == 1, texts  # the same words whatever was wrong
    assert "admin" in texts.pop()
    assert browser.get("/ui/keys").url.path == "/ui/login"


def test_a_post_without_the_csrf_token_is_refused_through_the_edge(stack, browser):
    keys = browser.login(stack.master_key)
    victim = ok(call(stack, "POST", "/api/keys", json={"name": unique("victim")}))["key"]["key_id"]
    forged = browser.http.post(f"/ui/keys/{victim}/revoke", data={})
    assert forged.status_code == 403
    wrong = browser.http.post(f"/ui/keys/{victim}/revoke", data={"csrf_token": "guess"})
    assert wrong.status_code == 403
    assert "revoked_at" not in ok(call(stack, "GET", f"/api/keys/{victim}"))
    assert victim in key_ids(browser.get("/ui/keys").text)
    assert keys.status_code == 200


def test_create_use_see_and_revoke_a_key(stack, browser):
    keys_page = browser.login(stack.master_key)
    name = unique("ui-made")
    shown = browser.submit(keys_page, "/ui/keys", name=name, role="member", tenant_id="")
    assert shown.status_code == 200 and shown.url.path == "/ui/keys/created"
    secret = SECRET.search(shown.text)[1]
    key_id = re.search(r"New secret for <code>([^<]+)</code>", shown.text)[1]
    assert secret.startswith("sk-sb-")
    again = browser.get("/ui/keys/created")  # a reload
    assert secret not in again.text and 'id="secret-gone"' in again.text
    listed = browser.get("/ui/keys")
    assert key_id in key_ids(listed.text) and secret not in listed.text

    for _ in range(2):
        assert ok(chat(stack, secret))

    def my_row():
        page = browser.get("/ui/usage").text
        row = re.search(rf'<tr data-key-id="{key_id}">.*?<td class="requests">(\d+)</td>', page)
        return page if row and row[1] == "2" else None

    usage = wait_until(my_row, timeout=20)
    assert usage, "the two requests never showed in the dashboard's usage table"
    chart = usage.split('<svg id="chart-requests"', 1)[1].split("</svg>", 1)[0]
    assert re.search(r"<title>[^<]*switchboard-local: \d+</title>", chart), chart
    assert "<td>local</td>" in usage.split('<table id="by-provider">', 1)[1].split("</table>")[0]

    ok(call(stack, "POST", "/api/billing/budget", json={
        "key_id": key_id, "monthly_limit_dollars": 10, "alert_thresholds_percent": [50, 80]}))
    budgets = browser.get("/ui/budgets").text
    section = budgets.split(f"({key_id})", 1)[1].split("</section>", 1)[0]
    assert "50%, 80%" in section and "10.000000" in section and "monthly" in section

    revoked = browser.submit(listed, f"/ui/keys/{key_id}/revoke")
    assert revoked.url.path == "/ui/keys" and key_id not in key_ids(revoked.text)
    assert chat(stack, secret).status_code == 401


def test_rotate_shows_the_new_secret_once_and_it_works(stack, browser):
    made = ok(call(stack, "POST", "/api/keys", json={"name": unique("rotate-me")}))
    keys_page = browser.login(stack.master_key)
    shown = browser.submit(keys_page, f"/ui/keys/{made['key']['key_id']}/rotate")
    secret = SECRET.search(shown.text)[1]
    assert secret != made["secret"] and ok(chat(stack, secret))
    assert chat(stack, made["secret"]).status_code == 401  # no grace period asked
    assert secret not in browser.get("/ui/keys/created").text


def test_guardrails_and_routing_pages_show_what_the_api_answers(stack, browser):
    name = unique("ui-policy")
    policy = ok(call(stack, "POST", "/api/guardrails/policies", json={
        "name": name, "input_rules": [{"check": "pii", "action": "redact"}]}))
    browser.login(stack.master_key)
    page = browser.get("/ui/guardrails").text
    assert name in page and policy["policy_id"] in page and "pii → ACTION_REDACT" in page
    assert ok(chat(stack, stack.master_key))
    routing = browser.get("/ui/routing")
    assert routing.status_code == 200
    rows = routing.text.split('<table id="deployments">', 1)[1]
    assert "switchboard-local" in rows and "closed" in rows


def test_a_tenant_admin_sees_only_its_own_tenants_keys(stack, browser, two_tenants):
    (a, (a_admin, a_member)), (b, (_, b_member)) = two_tenants.items()
    page = browser.login(a_admin)
    assert page.url.path == "/ui/keys"
    shown = key_ids(page.text)
    assert a_member in shown and b_member not in shown
    assert b not in page.text
    # Everything listed is a's: the API's scoping, not the dashboard's, decides this.
    all_keys = ok(call(stack, "GET", "/api/keys", params={"page_size": 1000}))["keys"]
    tenant_of = {k["key_id"]: k["tenant_id"] for k in all_keys}
    assert {tenant_of[k] for k in shown} == {a}
    # It can make keys in its own tenant only.
    made = browser.submit(page, "/ui/keys", name=unique("a-app"), role="member", tenant_id=b)
    assert made.status_code == 400 and "No tenant" in made.text
    # Usage too is its tenant's only (billing scopes it): a's member shows, b's never does.
    def usage_with_a():
        text = browser.get("/ui/usage").text
        return text if a_member in text else None

    usage = wait_until(usage_with_a, timeout=20)
    assert usage and b_member not in usage
    for where in ("budgets", "guardrails"):
        other = browser.get(f"/ui/{where}")
        assert other.status_code == 200 and b_member not in other.text and b not in other.text
    # Routing health is the admins' (the API says 403): the page says so rather than fail.
    routing = browser.get("/ui/routing")
    assert routing.status_code == 403 and "need an admin key" in routing.text


def test_logout_ends_the_session_on_the_server(stack, browser):
    page = browser.login(stack.master_key)
    (cookie,) = [c for c in browser.http.cookies.jar if c.name == "sb_dashboard"]
    stolen = cookie.value
    out = browser.submit(page, "/ui/logout")
    assert out.url.path == "/ui/login"
    replay = httpx.get(stack.edge_url + "/ui/keys", cookies={"sb_dashboard": stolen}, follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"] == "/ui/login"


def test_the_dashboard_logs_neither_keys_nor_session_ids(stack, browser):
    browser.login(stack.master_key)
    (cookie,) = [c for c in browser.http.cookies.jar if c.name == "sb_dashboard"]
    browser.get("/ui/keys")
    log = (stack.logs / "dashboard.log").read_text()
    assert '"path": "/ui/keys"' in log or "path=/ui/keys" in log or '"/ui/keys"' in log
    assert stack.master_key not in log and cookie.value not in log


def test_a_key_revoked_while_logged_in_ends_its_session(stack, browser):
    admin = ok(call(stack, "POST", "/api/keys", json={"name": unique("ui-admin"), "role": "admin"}))
    assert browser.login(admin["secret"]).url.path == "/ui/keys"
    assert browser.get("/ui/usage").url.path == "/ui/usage"
    ok(call(stack, "DELETE", f"/api/keys/{admin['key']['key_id']}"))
    assert browser.get("/ui/keys").url.path == "/ui/login"
    assert browser.get("/ui/usage").url.path == "/ui/login"
