"""Roles and tenant isolation through the real edge: a tenant admin manages its own tenant's
keys and cannot tell another tenant's keys exist; a member calls models and manages nothing."""

from __future__ import annotations

import pytest

from tests.e2e.test_http_edge import assert_openai_error
from tests.e2e.test_keys_lifecycle import call, chat, ok


@pytest.fixture(scope="module")
def tenants(stack):
    """Tenants iso-a and iso-b, each with a tenant admin and a member: {(tenant, role): secret}."""
    keys = {}
    for tenant in ("iso-a", "iso-b"):
        ok(call(stack, "POST", "/api/tenants", json={"tenant_id": tenant}))
        for role in ("tenant_admin", "member"):
            created = ok(call(stack, "POST", "/api/keys", json={
                "name": f"{tenant}-{role}", "tenant_id": tenant, "role": role}))
            keys[(tenant, role)] = (created["key"]["key_id"], created["secret"])
    return keys


def test_another_tenants_keys_answer_exactly_as_missing_ones(stack, tenants):
    boss = tenants[("iso-a", "tenant_admin")][1]
    theirs = tenants[("iso-b", "member")][0]
    missing = "key_000000000000000000000000"
    for method, suffix, kw in (("GET", "", {}), ("PATCH", "", {"json": {"name": "x"}}),
                               ("DELETE", "", {}), ("POST", "/rotate", {"json": {}})):
        foreign = call(stack, method, f"/api/keys/{theirs}{suffix}", boss, **kw)
        absent = call(stack, method, f"/api/keys/{missing}{suffix}", boss, **kw)
        err = assert_openai_error(foreign, 404, code="key_not_found", param="key_id")
        assert err["message"] == f"No key '{theirs}'."
        assert assert_openai_error(absent, 404)["message"] == f"No key '{missing}'."
    # Nothing of b's changed.
    assert ok(call(stack, "GET", f"/api/keys/{theirs}"))["name"] == "iso-b-member"
    assert ok(chat(stack, tenants[("iso-b", "member")][1]))
    listed = ok(call(stack, "GET", "/api/keys", boss, params={"page_size": 1000}))["keys"]
    assert {k["tenant_id"] for k in listed} == {"iso-a"}
    assert ok(call(stack, "GET", "/api/keys", boss, params={"tenant_id": "iso-b"})).get(
        "keys", []) == []
    assert_openai_error(call(stack, "GET", "/api/tenants/iso-b", boss), 404)
    assert [t["tenant_id"] for t in ok(call(stack, "GET", "/api/tenants", boss))["tenants"]] == [
        "iso-a"]
    assert_openai_error(call(stack, "POST", "/api/keys", boss, json={"tenant_id": "iso-b"}), 400,
                        param="tenant_id", code="tenant_not_found")
    assert_openai_error(call(stack, "GET", "/api/keys/master", boss), 404)


def test_a_tenant_admin_manages_its_own_tenant(stack, tenants):
    boss = tenants[("iso-a", "tenant_admin")][1]
    made = ok(call(stack, "POST", "/api/keys", boss, json={"name": "team-app"}))
    assert made["key"]["tenant_id"] == "iso-a" and made["key"]["role"] == "member"
    assert ok(chat(stack, made["secret"]))
    key_id = made["key"]["key_id"]
    ok(call(stack, "PATCH", f"/api/keys/{key_id}", boss, json={"rate_limits": {
        "requests_per_minute": 30}}))
    ok(call(stack, "POST", f"/api/keys/{key_id}/rotate", boss, json={}))
    ok(call(stack, "DELETE", f"/api/keys/{key_id}", boss))
    assert_openai_error(call(stack, "POST", "/api/keys", boss, json={"role": "admin"}), 403,
                        code="role_not_allowed", param="role")
    assert_openai_error(call(stack, "POST", "/api/tenants", boss, json={"tenant_id": "mine"}),
                        403, code="admin_key_required")
    assert_openai_error(call(stack, "PATCH", "/api/tenants/iso-a", boss, json={"name": "x"}),
                        403, code="admin_key_required")


def test_a_member_calls_models_and_manages_nothing(stack, tenants):
    member = tenants[("iso-a", "member")][1]
    assert ok(chat(stack, member))["choices"]
    for method, path in (("GET", "/api/keys"), ("POST", "/api/keys"), ("GET", "/api/tenants"),
                         ("GET", f"/api/keys/{tenants[('iso-a', 'member')][0]}")):
        assert_openai_error(call(stack, method, path, member,
                                 **({"json": {}} if method == "POST" else {})),
                            403, code="admin_key_required", error_type="permission_error")


def test_an_admin_key_manages_every_tenant(stack, tenants):
    admin = ok(call(stack, "POST", "/api/keys", json={"name": "platform", "role": "admin",
                                                      "tenant_id": "iso-a"}))["secret"]
    theirs = tenants[("iso-b", "member")][0]
    assert ok(call(stack, "GET", f"/api/keys/{theirs}", admin))["tenant_id"] == "iso-b"
    assert ok(call(stack, "POST", "/api/tenants", admin, json={"tenant_id": "iso-c"}))
    assert {"iso-a", "iso-b", "iso-c"} <= {t["tenant_id"] for t in ok(call(
        stack, "GET", "/api/tenants", admin, params={"page_size": 1000}))["tenants"]}
