"""Nothing accepted and ignored on the admin API, through the real edge: an unknown field, a wrong
type or an unknown query parameter is a 400 naming it; a field nothing enforces yet is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_http_edge import assert_openai_error
from tests.e2e.test_usage_billing import create_key, wait_for_records


def admin(stack, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, stack.edge_url + path, timeout=10,
                         headers={"authorization": f"Bearer {stack.master_key}"}, **kw)


def key_ids(stack) -> set[str]:
    resp = admin(stack, "GET", "/api/keys", params={"page_size": 1000})
    assert resp.status_code == 200, resp.text
    return {k["key_id"] for k in resp.json()["keys"]}


@pytest.fixture(scope="module")
def key_id(stack) -> str:
    return create_key(stack)[0]


def test_an_unknown_key_field_is_a_400_naming_it_and_stores_nothing(stack):
    before = key_ids(stack)
    err = assert_openai_error(admin(stack, "POST", "/api/keys", json={"rpm_limit": 100}),
                              400, param="rpm_limit", code="unknown_parameter",
                              error_type="invalid_request_error")
    assert "rpm_limit" in err["message"]
    assert key_ids(stack) == before


# Every admin route with a body, each with one unknown field.
BODY_ROUTES = [
    ("POST", "/api/keys"),
    ("PATCH", "/api/keys/{key_id}"),
    ("POST", "/api/tenants"),
    ("PUT", "/api/billing/budget"),
    ("POST", "/api/billing/budget"),
    ("POST", "/api/guardrails/policies"),
    ("POST", "/api/memory/collections"),
    ("POST", "/api/memory/collections/docs/documents"),
    ("POST", "/api/memory/collections/docs/query"),
]


@pytest.mark.parametrize("method, path", BODY_ROUTES, ids=[" ".join(r) for r in BODY_ROUTES])
def test_every_admin_body_refuses_unknown_fields(stack, key_id, method, path):
    resp = admin(stack, method, path.format(key_id=key_id), json={"surprise_field": 1})
    assert_openai_error(resp, 400, param="surprise_field", code="unknown_parameter")


@pytest.mark.parametrize("body, param", [
    ({"name": 5}, "name"),
    ({"allowed_models": "gpt-4o"}, "allowed_models"),
    ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
    ({"metadata": {"team": 1}}, "metadata.team"),
])
def test_wrong_json_types_are_a_400_naming_the_field(stack, body, param):
    assert_openai_error(admin(stack, "POST", "/api/keys", json=body), 400, param=param,
                        code="invalid_type")


def test_not_json_is_a_400(stack):
    assert_openai_error(admin(stack, "POST", "/api/keys", content=b'{"name": '), 400,
                        code="invalid_json")


@pytest.mark.parametrize("body, param, code", [
    ({"monthly_quota_dollars": 1.0000001}, "monthly_quota_dollars", "invalid_value"),  # AILB's
    ({"cost_limit_daily": "lots"}, "cost_limit_daily", "invalid_type"),  # AI Gateway's
    ({"cost_limit_monthly": -5}, "cost_limit_monthly", "invalid_value"),
    ({"max_budget_micros_usd": "-1"}, "max_budget_micros_usd", "invalid_value"),
])
def test_bad_budget_fields_are_a_400_and_make_no_key(stack, key_id, body, param, code):
    before = key_ids(stack)
    assert_openai_error(admin(stack, "POST", "/api/keys", json={"name": "x", **body}), 400,
                        param=param, code=code)
    assert key_ids(stack) == before
    assert_openai_error(admin(stack, "PATCH", f"/api/keys/{key_id}", json=body), 400,
                        param=param, code=code)


def test_policy_ids_are_checked_for_form(stack):
    assert_openai_error(admin(stack, "POST", "/api/tenants", json={
        "name": "acme", "guardrail_policy_ids": ["no spaces"]}), 400,
        param="guardrail_policy_ids[0]", code="invalid_value")
    assert_openai_error(admin(stack, "POST", "/api/keys", json={
        "name": "x", "guardrail_policy_ids": [f"pol_{i}" for i in range(17)]}), 400,
        param="guardrail_policy_ids")


def test_valid_bodies_still_work(stack):
    created = admin(stack, "POST", "/api/keys", json={
        "name": "strict", "allowedModels": ["switchboard-local"], "expires_in_seconds": "3600",
        "metadata": {"team": "ml"}})
    assert created.status_code == 200, created.text
    key = created.json()["key"]
    assert (key["name"], key["allowed_models"], key["metadata"]) == (
        "strict", ["switchboard-local"], {"team": "ml"})
    patched = admin(stack, "PATCH", f"/api/keys/{key['key_id']}", json={"name": "renamed"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["key_id"], patched.json()["name"]) == (key["key_id"], "renamed")
    tenant = admin(stack, "POST", "/api/tenants", json={"name": "Strict Inc"})
    assert tenant.status_code == 200 and tenant.json()["name"] == "Strict Inc"


def test_the_path_cannot_be_overridden_from_the_body_or_the_query(stack, key_id):
    other = create_key(stack)[0]
    assert_openai_error(admin(stack, "PATCH", f"/api/keys/{key_id}",
                              json={"key_id": other, "name": "x"}), 400, param="key_id")
    assert_openai_error(admin(stack, "PATCH", f"/api/keys/{key_id}", params={"key_id": other},
                              json={"name": "x"}), 400)
    assert admin(stack, "GET", f"/api/keys/{other}").json()["name"] == "e2e"


def test_a_query_parameter_cannot_redirect_a_read_or_a_revocation_to_another_key(stack, key_id):
    other = create_key(stack)[0]
    for method in ("GET", "DELETE"):
        assert_openai_error(admin(stack, method, f"/api/keys/{key_id}", params={"key_id": other}),
                            400, param="key_id")
    assert "revoked_at" not in admin(stack, "GET", f"/api/keys/{other}").json()  # not revoked


@pytest.mark.parametrize("path, params", [
    ("/api/keys", {"tenant": "default"}),
    ("/api/billing/spend", {"perod": "daily"}),
    ("/api/billing/usage", {"page_sise": "5"}),
    ("/api/routing/stats", {"verbose": "1"}),
    ("/api/tenants", {"x": "1"}),
])
def test_unknown_query_parameters_on_admin_routes_are_a_400(stack, path, params):
    err = assert_openai_error(admin(stack, "GET", path, params=params), 400)
    assert next(iter(params)) in err["message"]


def test_known_query_parameters_still_work_and_openai_routes_still_ignore_extras(stack):
    assert admin(stack, "GET", "/api/billing/spend", params={"period": "daily"}).status_code == 200
    # OpenAI clients add their own (Azure's api-version): the /v1 routes keep ignoring them.
    models = admin(stack, "GET", "/v1/models", params={"api-version": "2024-06-01"})
    assert models.status_code == 200


def test_spend_and_usage_say_the_cost_is_unknown_not_free(stack):
    # A model neither switchboard.yaml nor the price catalog prices (a passthrough name).
    key_id, secret = create_key(stack)
    resp = httpx.post(stack.edge_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {secret}"},
                      json={"model": "openai/sb-model-nobody-prices",
                            "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    (record,) = wait_for_records(stack, key_id, 1)
    assert record["price_unknown"] is True and record["cost_micros_usd"] == 0
    spend = admin(stack, "GET", "/api/billing/spend", params={"key_id": key_id}).json()
    assert spend["totals"]["requests"] == 1 and spend["totals"]["price_unknown"] is True
    assert spend["totals"]["unpriced_requests"] == 1
    assert [m["totals"]["price_unknown"] for m in spend["by_model"]] == [True]


def test_no_service_of_the_launched_stack_warns_about_its_environment(stack):
    for name in stack.services:
        log = (stack.logs / f"{name}.log").read_text(errors="replace")
        assert "unknown environment variable" not in log, name
