"""Guardrail policies through the real edge: the issue's example body in plain words, the
proto's enum names too, strict bodies naming what is wrong, PATCH with the fields it names,
tenants' keys reading only their own tenant's policies, and admin keys alone changing them."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.test_http_edge import assert_openai_error
from tests.e2e.test_usage_billing import create_key

BASE = "/api/guardrails/policies"


def call(stack, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or stack.master_key}"} if key != "" else {}
    return httpx.request(method, stack.edge_url + path, headers=headers, timeout=10, **kw)


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def tenant_key(stack) -> tuple[str, str]:
    """(tenant id, a non-admin key of it)."""
    tenant = unique("acme")
    resp = call(stack, "POST", "/api/tenants", json={"name": tenant, "tenant_id": tenant})
    assert resp.status_code == 200, resp.text
    return tenant, create_key(stack, tenant_id=tenant)[1]


def test_create_read_update_delete_with_plain_words(stack):
    name = unique("no-pii")
    resp = call(stack, "POST", BASE, json={
        "name": name, "input_rules": [{"check": "pii", "action": "redact"}],
        "output_rules": [{"check": "pii", "action": "redact", "options": {"entities": ["email"]}}]})
    assert resp.status_code == 200, resp.text
    policy = resp.json()
    assert policy["policy_id"].startswith("pol_") and policy["name"] == name
    assert policy["tenant_id"] == "default"
    assert policy["input_rules"] == [{"check": "pii", "action": "ACTION_REDACT", "options": {}}]
    assert policy["output_rules"][0]["options"] == {"entities": ["email"]}
    path = f"{BASE}/{policy['policy_id']}"

    assert call(stack, "GET", path).json() == policy
    listed = call(stack, "GET", BASE, params={"page_size": 1000}).json()["policies"]
    assert policy["policy_id"] in {p["policy_id"] for p in listed}

    patched = call(stack, "PATCH", path, json={"input_rules": [
        {"check": "prompt_injection", "action": "ACTION_BLOCK", "options": {"threshold": 0.9}}],
        "fail_mode": "open"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == name and body["fail_mode"] == "FAIL_MODE_OPEN"
    assert body["input_rules"] == [{"check": "prompt_injection", "action": "ACTION_BLOCK",
                                   "options": {"threshold": 0.9}}]
    assert body["output_rules"] == policy["output_rules"]  # not named: unchanged

    assert call(stack, "DELETE", path).status_code == 200
    assert_openai_error(call(stack, "GET", path), 404, code="policy_not_found")


@pytest.mark.parametrize("body, param, code", [
    ({"name": "x", "input_rules": [{"check": "pii", "action": "redact", "colour": 1}]},
     "input_rules[0].colour", "unknown_parameter"),
    ({"name": "x", "input_rules": [{"check": "pii", "options": {"colour": "red"}}]},
     "input_rules[0].options.colour", "invalid_value"),
    ({"name": "x", "input_rules": [{"check": "pii", "action": "obliterate"}]},
     "input_rules[0].action", "invalid_value"),
    ({"name": "x", "input_rules": [{"check": "mind_reading"}]}, "input_rules[0].check", "invalid_value"),
    ({"name": "x", "output_rules": [{"check": "length", "action": "redact", "options": {"max_chars": 5}}]},
     "output_rules[0].action", "invalid_value"),
    ({"name": "x", "policy_id": "pol_mine"}, "policy_id", "unknown_parameter"),
    ({"name": 7}, "name", "invalid_type"),
    ({"input_rules": []}, "name", "missing_required_parameter"),
])
def test_a_bad_body_is_a_400_naming_the_field(stack, body, param, code):
    assert_openai_error(call(stack, "POST", BASE, json=body), 400, param=param, code=code)


def test_names_are_unique_within_a_tenant(stack):
    name = unique("dup")
    assert call(stack, "POST", BASE, json={"name": name}).status_code == 200
    assert_openai_error(call(stack, "POST", BASE, json={"name": name}), 409, code="policy_name_taken")


def test_a_tenants_key_reads_its_own_tenants_policies_and_changes_none(stack, tenant_key):
    tenant, key = tenant_key
    theirs = call(stack, "POST", BASE, json={"name": unique("t"), "tenant_id": tenant}).json()
    ours = call(stack, "POST", BASE, json={"name": unique("d")}).json()
    assert call(stack, "GET", f"{BASE}/{theirs['policy_id']}", key).status_code == 200
    assert_openai_error(call(stack, "GET", f"{BASE}/{ours['policy_id']}", key), 404)
    assert [p["policy_id"] for p in call(stack, "GET", BASE, key).json()["policies"]] == [theirs["policy_id"]]
    assert_openai_error(call(stack, "GET", BASE, key, params={"tenant_id": "default"}), 403)
    assert_openai_error(call(stack, "POST", BASE, key, json={"name": "mine"}), 403,
                        code="admin_key_required")
    assert_openai_error(call(stack, "DELETE", f"{BASE}/{theirs['policy_id']}", key), 403)
    assert_openai_error(call(stack, "GET", BASE, ""), 401, code="missing_api_key")


def test_patch_takes_no_query_and_names_something(stack):
    policy = call(stack, "POST", BASE, json={"name": unique("q")}).json()
    path = f"{BASE}/{policy['policy_id']}"
    assert_openai_error(call(stack, "PATCH", path, params={"policy_id": "pol_other"}, json={"name": "y"}),
                        400, code="unknown_parameter")
    assert_openai_error(call(stack, "PATCH", path, json={}), 400, code="missing_required_parameter")
    assert_openai_error(call(stack, "PATCH", path, json={"tenant_id": "other"}), 400, param="tenant_id")
