"""Keys and tenants through the real edge: the lifecycle, rotation, expiry at its time, the
seeds' own request shapes, and bad input named."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.test_http_edge import assert_openai_error

CHAT = {"model": "switchboard-local", "messages": [{"role": "user", "content": "hi"}]}


def call(stack, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    return httpx.request(method, stack.edge_url + path, timeout=10, headers={
        "authorization": f"Bearer {key or stack.master_key}", **kw.pop("headers", {})}, **kw)


def chat(stack, key: str) -> httpx.Response:
    return httpx.post(stack.edge_url + "/v1/chat/completions", json=CHAT, timeout=10,
                      headers={"authorization": f"Bearer {key}"})


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_until(check, timeout: float = 10.0):
    """Poll `check` until it returns something truthy (a bounded wait for an event to land)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_lifecycle_create_read_list_update_revoke(any_stack):
    stack = any_stack
    created = ok(call(stack, "POST", "/api/keys", json={
        "name": "svc-life", "user_id": "ana", "allowed_models": ["switchboard-*"],
        "rate_limits": {"requests_per_minute": 600, "tokens_per_day": "1000000"},
        "expires_in_seconds": 3600, "metadata": {"team": "ml"}}))
    key, secret = created["key"], created["secret"]
    assert secret.startswith("sk-sb-") and len(secret) == 55
    assert key["key_hint"] == f"{secret[:8]}...{secret[-4:]}" and key["role"] == "member"
    assert key["rate_limits"] == {"requests_per_minute": 600, "tokens_per_day": "1000000"}
    shown = ok(call(stack, "GET", f"/api/keys/{key['key_id']}"))
    assert secret not in str(shown) and shown["user_id"] == "ana"
    assert ok(chat(stack, secret))["choices"]

    listed = ok(call(stack, "GET", "/api/keys", params={"user_id": "ana", "name_prefix": "svc-",
                                                          "revoked": "false"}))
    assert key["key_id"] in {k["key_id"] for k in listed["keys"]}
    patched = ok(call(stack, "PATCH", f"/api/keys/{key['key_id']}", json={
        "name": "svc-life-2", "rate_limits": {"requests_per_minute": 0}, "role": "member"}))
    assert patched["name"] == "svc-life-2" and "requests_per_minute" not in patched["rate_limits"]

    first = ok(call(stack, "DELETE", f"/api/keys/{key['key_id']}"))
    again = ok(call(stack, "DELETE", f"/api/keys/{key['key_id']}"))  # idempotent
    assert first["revoked_at"] == again["revoked_at"]
    # keys.changed reaches the router: the revoked key is refused on the next requests.
    assert wait_until(lambda: chat(stack, secret).status_code == 401)
    assert_openai_error(chat(stack, secret), 401, code="key_revoked")
    revoked = ok(call(stack, "GET", "/api/keys", params={"revoked": "true", "page_size": 1000}))
    assert key["key_id"] in {k["key_id"] for k in revoked["keys"]}


def test_pagination_visits_every_key_once(stack):
    ok(call(stack, "POST", "/api/tenants", json={"tenant_id": "pages", "name": "Pages"}))
    made = {ok(call(stack, "POST", "/api/keys", json={"name": f"p{i}", "tenant_id": "pages"}))
            ["key"]["key_id"] for i in range(5)}
    seen, token = [], ""
    while True:
        page = ok(call(stack, "GET", "/api/keys", params={"tenant_id": "pages", "page_size": 2,
                                                            **({"page_token": token} if token
                                                               else {})}))
        assert len(page["keys"]) <= 2
        seen += [k["key_id"] for k in page["keys"]]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert sorted(seen) == sorted(made)


def test_rotation_keeps_the_old_secret_for_its_grace_period(stack):
    created = ok(call(stack, "POST", "/api/keys", json={"name": "rotating"}))
    key_id, old = created["key"]["key_id"], created["secret"]
    assert ok(chat(stack, old))
    rotated = ok(call(stack, "POST", f"/api/keys/{key_id}/rotate",
                      json={"grace_period_seconds": "600"}))
    new = rotated["secret"]
    assert new != old and rotated["key"]["key_hint"].endswith(new[-4:])
    ends = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=590) < ends - datetime.now(UTC) <= timedelta(seconds=600)
    assert ok(chat(stack, new)) and ok(chat(stack, old))  # both, during the grace period
    # An empty body rotates at once: the secret before stops on the next requests.
    now = ok(call(stack, "POST", f"/api/keys/{key_id}/rotate", content=b""))["secret"]
    assert wait_until(lambda: chat(stack, new).status_code == 401)
    assert ok(chat(stack, now))
    assert_openai_error(call(stack, "POST", f"/api/keys/{key_id}/rotate",
                             json={"grace_period_seconds": "-1"}), 400,
                        param="grace_period_seconds")
    assert_openai_error(call(stack, "POST", f"/api/keys/{key_id}/rotate", json={"grace": 1}),
                        400, param="grace", code="unknown_parameter")


def test_a_key_expires_at_its_time(stack):
    created = ok(call(stack, "POST", "/api/keys", json={"name": "brief",
                                                         "expires_in_seconds": "3"}))
    ends = datetime.fromisoformat(created["key"]["expires_at"].replace("Z", "+00:00"))
    assert ok(chat(stack, created["secret"]))
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.05)
    # The router checks the expiry against the clock itself: no event is needed.
    assert_openai_error(chat(stack, created["secret"]), 401)


def test_ailb_shape_with_x_user_id(stack):
    """seeds/002: a flat body, the owner in X-User-ID, its dollar quota a monthly budget that
    billing holds."""
    created = ok(call(stack, "POST", "/api/keys", headers={"X-User-ID": "user-123"},
                      json={"name": "My Production Key", "monthly_quota_dollars": 100.0,
                            "rate_limit_rpm": 60}))
    key = created["key"]
    budget = ok(call(stack, "GET", f"/api/billing/budget/{key['key_id']}"))
    assert (budget["period"], budget["limit_usd"]) == ("BUDGET_PERIOD_MONTHLY", 100.0)
    assert key["user_id"] == "user-123" and key["rate_limits"] == {"requests_per_minute": 60}
    mine = ok(call(stack, "GET", "/api/keys", headers={"X-User-ID": "user-123"}))["keys"]
    assert {k["user_id"] for k in mine} == {"user-123"} and key["key_id"] in {
        k["key_id"] for k in mine}
    updated = ok(call(stack, "PATCH", f"/api/keys/{key['key_id']}",
                      headers={"X-User-ID": "user-123"},
                      json={"name": "Updated Name", "rate_limit_rpm": 120}))
    assert updated["rate_limits"] == {"requests_per_minute": 120}
    other = ok(call(stack, "POST", "/api/keys", json={"name": "not ana's", "user_id": "bo"}))
    assert_openai_error(call(stack, "GET", f"/api/keys/{other['key']['key_id']}",
                             headers={"X-User-ID": "user-123"}), 404, code="key_not_found")
    ok(call(stack, "DELETE", f"/api/keys/{key['key_id']}", headers={"X-User-ID": "user-123"}))
    assert_openai_error(call(stack, "PATCH", f"/api/keys/{key['key_id']}", json={
        "rate_limit_rpm": 1, "rate_limits": {"requests_per_minute": 2}}), 400,
        param="rate_limit_rpm")


def test_ai_gateway_shape(stack):
    """seeds/004: rate-limit override, allowed models, expiry, daily and monthly cost limits."""
    body = {"name": "Production Key", "rate_limit_override": 500,
            "allowed_models_override": ["gpt-4*", "switchboard-local"],
            "expires_at": "2099-12-31T00:00:00Z"}
    created = ok(call(stack, "POST", "/api/keys", json=body))
    key = created["key"]
    assert key["rate_limits"] == {"requests_per_minute": 500}
    assert key["allowed_models"] == ["gpt-4*", "switchboard-local"]
    assert key["expires_at"] == "2099-12-31T00:00:00Z"
    assert ok(chat(stack, created["secret"]))
    limited = ok(call(stack, "POST", "/api/keys", json={**body, "cost_limit_daily": 5,
                                                         "cost_limit_monthly": "50.25"}))
    budget = ok(call(stack, "GET", f"/api/billing/budget/{limited['key']['key_id']}"))
    periods = {b["period"]: b["limit_micros_usd"] for b in budget["limits"]}
    assert periods == {"BUDGET_PERIOD_DAILY": 5_000_000, "BUDGET_PERIOD_MONTHLY": 50_250_000}
    # A PATCH changes the period it names and keeps the other.
    ok(call(stack, "PATCH", f"/api/keys/{limited['key']['key_id']}", json={"cost_limit_daily": 7}))
    budget = ok(call(stack, "GET", f"/api/billing/budget/{limited['key']['key_id']}"))
    periods = {b["period"]: b["limit_micros_usd"] for b in budget["limits"]}
    assert periods == {"BUDGET_PERIOD_DAILY": 7_000_000, "BUDGET_PERIOD_MONTHLY": 50_250_000}


@pytest.mark.parametrize("body, param", [
    ({"allowed_models": ["gpt-*-mini"]}, "allowed_models[0]"),
    ({"allowed_models_override": ["ok", "*x"]}, "allowed_models[1]"),
    ({"rate_limits": {"requests_per_minute": -1}}, "rate_limits.requests_per_minute"),
    ({"rate_limits": {"tokens_per_minute": 0}}, "rate_limits.tokens_per_minute"),
    ({"rate_limits": {"max_parallel_requests": 10_000_000}}, "rate_limits.max_parallel_requests"),
    ({"rate_limit_rpm": 99_999_999}, "rate_limits.requests_per_minute"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_in_seconds": "-5"}, "expires_in_seconds"),
    ({"tenant_id": "no-such-tenant"}, "tenant_id"),
    ({"role": "owner"}, "role"),
    ({"role": 3}, "role"),
])
def test_bad_input_is_a_400_naming_the_field(stack, body, param):
    assert_openai_error(call(stack, "POST", "/api/keys", json={"name": "bad", **body}), 400,
                        param=param)


def test_tenants_with_default_limits_and_deletion_when_empty(any_stack):
    stack = any_stack
    tenant = ok(call(stack, "POST", "/api/tenants", json={
        "tenant_id": "acme-e2e", "name": "Acme", "default_rate_limits": {
            "requests_per_minute": 120, "tokens_per_minute": 50_000}}))
    assert tenant["default_rate_limits"]["requests_per_minute"] == 120
    key = ok(call(stack, "POST", "/api/keys", json={
        "name": "inherits", "tenant_id": "acme-e2e",
        "rate_limits": {"tokens_per_minute": 1000}}))["key"]
    assert key["effective_rate_limits"] == {"requests_per_minute": 120,
                                            "tokens_per_minute": 1000}
    got = ok(call(stack, "GET", "/api/tenants/acme-e2e"))
    assert got["name"] == "Acme"
    renamed = ok(call(stack, "PATCH", "/api/tenants/acme-e2e", json={
        "name": "Acme Inc", "default_rate_limits": {"requests_per_minute": 0}}))
    assert renamed["name"] == "Acme Inc" and "requests_per_minute" not in renamed[
        "default_rate_limits"]
    assert "acme-e2e" in {t["tenant_id"] for t in ok(call(stack, "GET", "/api/tenants"))[
        "tenants"]}
    assert_openai_error(call(stack, "DELETE", "/api/tenants/acme-e2e"), 409,
                        code="tenant_not_empty")
    ok(call(stack, "DELETE", f"/api/keys/{key['key_id']}"))
    ok(call(stack, "DELETE", "/api/tenants/acme-e2e"))
    assert_openai_error(call(stack, "GET", "/api/tenants/acme-e2e"), 404, code="tenant_not_found")
    assert_openai_error(call(stack, "DELETE", "/api/tenants/default"), 400, code="default_tenant")
    assert_openai_error(call(stack, "PATCH", "/api/tenants/x", json={"guardrail_policy_ids": []}),
                        404, code="tenant_not_found")
