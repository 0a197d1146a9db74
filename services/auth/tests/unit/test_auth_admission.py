"""Authorize outcomes, key administration and rotation, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common.errors import (InvalidRequest, MissingApiKey, NotFound, NotSupportedYet,
                                       PermissionDenied, Unauthenticated)

from switchboard_auth import key_format
from switchboard_auth.domain import (KeyChange, KeyFilter, KeyPatch, NewKey, RateLimits, Role,
                                     TenantPatch)


async def test_master_key_is_an_admin_of_the_default_tenant(world):
    verdict = await world.admission.authorize(world.master_secret, "any-model")
    assert (verdict.key.key_id, verdict.key.tenant_id, verdict.key.role) == (
        "master", "default", Role.ADMIN)
    assert verdict.key.is_admin and verdict.cache_ttl_seconds == 30
    assert (await world.admission.require_admin(world.master_secret)).key_id == "master"


async def test_missing_and_unknown_keys_are_401(world):
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize("", "gpt-4o")
    assert err.value.code == "missing_api_key"
    assert err.value.message == MissingApiKey().message  # OpenAI's own wording
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(key_format.generate_secret(), "gpt-4o")
    assert (err.value.code, err.value.message) == ("invalid_api_key", "Incorrect API key provided.")


async def test_created_key_carries_what_a_router_checks_locally(world):
    key, secret = await world.key(name="ci", user_id="user-123",
                                  allowed_models=("gpt-4o*", "anthropic/*"),
                                  rate_limits=RateLimits(requests_per_minute=60,
                                                         tokens_per_day=10_000),
                                  metadata={"team": "ml"})
    assert key_format.has_valid_checksum(secret)
    assert (key.key_prefix, key.key_hint) == (secret[:8], f"{secret[:8]}...{secret[-4:]}")
    verdict = await world.admission.authorize(secret, "gpt-4o-mini")
    got = verdict.key
    assert (got.key_id, got.tenant_id, got.user_id, got.role) == (
        key.key_id, "default", "user-123", Role.MEMBER)
    assert got.allowed_models == ("gpt-4o*", "anthropic/*")
    assert got.effective_limits == RateLimits(requests_per_minute=60, tokens_per_day=10_000)
    assert verdict.expires_at is None and verdict.cache_ttl_seconds == 30
    await world.admission.authorize(secret, "anthropic/claude-3-opus")
    await world.admission.authorize(secret, "")  # the key alone
    with pytest.raises(PermissionDenied) as err:
        await world.admission.authorize(secret, "claude-3-opus")
    assert err.value.message == "This key may not use model 'claude-3-opus'."
    assert (err.value.param, err.value.code) == ("model", "model_not_allowed")
    assert world.notes.seen == [(key.key_id, KeyChange.CREATED)]


async def test_expired_key_is_401_at_the_exact_time_and_the_ttl_stops_there(world):
    key, secret = await world.key(expires_in_seconds=20)
    assert key.expires_at == world.clock.now + timedelta(seconds=20)
    verdict = await world.admission.authorize(secret, "m")
    assert verdict.cache_ttl_seconds == 20 and verdict.expires_at == key.expires_at
    world.clock.now += timedelta(seconds=19, microseconds=999_999)
    await world.admission.authorize(secret, "m")
    world.clock.now += timedelta(microseconds=1)
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(secret, "m")
    assert err.value.code == "key_expired"


async def test_revocation_is_401_and_idempotent(world):
    key, secret = await world.key()
    master = await world.master()
    revoked = await world.keys.revoke(master, key.key_id)
    assert revoked.revoked_at == world.clock.now
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(secret, "m")
    assert err.value.code == "key_revoked"
    world.clock.now += timedelta(hours=1)
    again = await world.keys.revoke(master, key.key_id)
    assert again.revoked_at == revoked.revoked_at
    # The second revocation changed nothing, so it announced nothing.
    assert [c for _, c in world.notes.seen] == [KeyChange.CREATED, KeyChange.REVOKED]


async def test_rotation_with_a_grace_period(world):
    key, old = await world.key(name="svc")
    master = await world.master()
    rotated = await world.keys.rotate(master, key.key_id, 60)
    new = rotated.secret
    assert new != old and key_format.has_valid_checksum(new)
    assert rotated.key.key_hint == key_format.hint(new)
    assert rotated.key.previous_secret_expires_at == world.clock.now + timedelta(seconds=60)
    old_verdict = await world.admission.authorize(old, "m")
    assert old_verdict.expires_at == world.clock.now + timedelta(seconds=60)
    assert old_verdict.cache_ttl_seconds == 30
    assert (await world.admission.authorize(new, "m")).expires_at is None
    world.clock.now += timedelta(seconds=60)
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(old, "m")
    assert err.value.code == "key_expired" and "rotated" in err.value.message
    await world.admission.authorize(new, "m")
    # Rotating at once: the previous secret stops now.
    again = await world.keys.rotate(master, key.key_id, None)
    with pytest.raises(Unauthenticated):
        await world.admission.authorize(new, "m")
    await world.admission.authorize(again.secret, "m")
    assert [c for _, c in world.notes.seen][-2:] == [KeyChange.ROTATED, KeyChange.ROTATED]


async def test_rotation_refusals(world):
    master = await world.master()
    key, _ = await world.key()
    for grace in (-1, 30 * 86400 + 1):
        with pytest.raises(InvalidRequest) as err:
            await world.keys.rotate(master, key.key_id, grace)
        assert err.value.param == "grace_period_seconds"
    with pytest.raises(InvalidRequest) as err:
        await world.keys.rotate(master, "master", None)
    assert err.value.code == "master_key_immutable"
    await world.keys.revoke(master, key.key_id)
    with pytest.raises(InvalidRequest) as err:
        await world.keys.rotate(master, key.key_id, None)
    assert err.value.code == "key_revoked"


@pytest.mark.parametrize("new, param", [
    (NewKey(allowed_models=("gpt-*-mini",)), "allowed_models[0]"),
    (NewKey(allowed_models=("ok", "")), "allowed_models[1]"),
    (NewKey(expires_in_seconds=0), "expires_in_seconds"),
    (NewKey(expires_in_seconds=4611686018427387904), "expires_in_seconds"),
    (NewKey(expires_in_seconds=5, expires_at=datetime(2030, 1, 1, tzinfo=UTC)),
     "expires_in_seconds"),
    (NewKey(expires_at=datetime(2020, 1, 1, tzinfo=UTC)), "expires_at"),
    (NewKey(name="x" * 201), "name"),
    (NewKey(role="owner"), "role"),
    (NewKey(user_id="u" * 201), "user_id"),
    (NewKey(rate_limits=RateLimits(requests_per_minute=0)), "rate_limits.requests_per_minute"),
    (NewKey(rate_limits=RateLimits(tokens_per_minute=-5)), "rate_limits.tokens_per_minute"),
    (NewKey(rate_limits=RateLimits(tokens_per_day=10**14)), "rate_limits.tokens_per_day"),
    (NewKey(rate_limits=RateLimits(max_parallel_requests=10**6)),
     "rate_limits.max_parallel_requests"),
    (NewKey(metadata={"k": "v" * 1001}), "metadata.k"),
])
async def test_create_validation_names_the_field(world, new, param):
    with pytest.raises(InvalidRequest) as err:
        await world.keys.create(await world.master(), new)
    assert err.value.param == param
    assert world.notes.seen == []


@pytest.mark.parametrize("new, param, issue", [
    # Budgets are billing's: an auth built without billing cannot take them (test_auth_key_budgets).
    (NewKey(max_budget_micros_usd=0), "max_budget_micros_usd", "no billing"),
])
async def test_fields_nothing_enforces_yet_are_refused_not_stored(world, new, param, issue):
    master = await world.master()
    with pytest.raises(NotSupportedYet) as err:
        await world.keys.create(master, new)
    assert (err.value.param, err.value.code, err.value.http_status) == (param, "not_implemented",
                                                                      400)
    assert issue in err.value.message
    assert [k.key_id for k in (await world.keys.list(master, KeyFilter(), None, 10)).keys] == [
        "master"]


async def test_update_patches_only_what_is_set(world):
    master = await world.master()
    key, secret = await world.key(name="a", allowed_models=("m1",),
                                  rate_limits=RateLimits(requests_per_minute=10,
                                                         tokens_per_minute=100),
                                  metadata={"team": "ml", "env": "dev"})
    patched = await world.keys.update(master, key.key_id, KeyPatch(
        allowed_models=("m2*",), rate_limits={"tokens_per_minute": None,
                                              "max_parallel_requests": 4},
        metadata={"env": "", "owner": "ana"}))
    assert patched.name == "a" and patched.allowed_models == ("m2*",)
    assert patched.rate_limits == RateLimits(requests_per_minute=10, max_parallel_requests=4)
    assert patched.metadata == {"team": "ml", "owner": "ana"}
    assert patched.updated_at == world.clock.now
    await world.admission.authorize(secret, "m2-large")
    with pytest.raises(PermissionDenied):
        await world.admission.authorize(secret, "m1")
    expiry = world.clock.now + timedelta(days=1)
    assert (await world.keys.update(master, key.key_id,
                                    KeyPatch(expires_at=expiry))).expires_at == expiry
    assert (await world.keys.update(master, key.key_id,
                                    KeyPatch(expires_in_seconds=60))).expires_at == (
        world.clock.now + timedelta(seconds=60))
    assert (await world.keys.update(master, key.key_id,
                                    KeyPatch(expires_at=None))).expires_at is None
    assert world.notes.seen[-1] == (key.key_id, KeyChange.UPDATED)
    with pytest.raises(InvalidRequest) as err:
        await world.keys.update(master, key.key_id, KeyPatch(
            rate_limits={"requests_per_minute": -1}))
    assert err.value.param == "rate_limits.requests_per_minute"
    with pytest.raises(NotSupportedYet):
        await world.keys.update(master, key.key_id, KeyPatch(max_budget_micros_usd=5))
    with pytest.raises(NotFound):
        await world.keys.update(master, "key_nope", KeyPatch(name="x"))
    with pytest.raises(InvalidRequest) as err:
        await world.keys.update(master, "master", KeyPatch(name="x"))
    assert err.value.code == "master_key_immutable"
    with pytest.raises(InvalidRequest):
        await world.keys.revoke(master, "master")


async def test_listing_pages_and_filters(world):
    master = await world.master()
    await world.tenants.create(master, "Acme", "acme")
    made = []
    for i in range(7):
        key, _ = await world.key(name=f"{'web' if i % 2 else 'batch'}-{i}",
                                 user_id="ana" if i < 3 else "bo",
                                 tenant_id="acme" if i < 5 else "")
        made.append(key.key_id)
        world.clock.now += timedelta(microseconds=1 if i % 2 else 0)  # ties on created_at too
    await world.keys.revoke(master, made[0])
    seen, cursor = [], None
    while True:
        page = await world.keys.list(master, KeyFilter(), cursor, 3)
        seen += [k.key_id for k in page.keys]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == {"master", *made}  # each once

    async def ids(**where):
        return {k.key_id for k in (await world.keys.list(master, KeyFilter(**where), None,
                                                         100)).keys}

    assert await ids(tenant_id="acme") == set(made[:5])
    assert await ids(user_id="ana") == set(made[:3])
    assert await ids(name_prefix="web-") == {made[1], made[3], made[5]}
    assert await ids(name_prefix="%") == set()  # LIKE's wildcards are literal
    assert await ids(revoked=True) == {made[0]}
    assert await ids(revoked=False, tenant_id="acme") == set(made[1:5])
    assert await ids(tenant_id="nope") == set()


async def test_a_keys_guardrail_policies_add_to_its_tenants(world):
    master = await world.master()
    await world.tenants.create(master, "Acme", "acme", guardrail_policy_ids=("pol_t", "pol_t"))
    key, secret = await world.key(tenant_id="acme", guardrail_policy_ids=("pol_k", "pol_t"))
    assert key.guardrail_policy_ids == ("pol_k", "pol_t")
    verdict = await world.admission.authorize(secret, "")
    assert verdict.key.effective_policy_ids == ("pol_t", "pol_k")  # the tenant's first, once

    await world.keys.update(master, key.key_id, KeyPatch(guardrail_policy_ids=()))
    assert (await world.admission.authorize(secret, "")).key.effective_policy_ids == ("pol_t",)
    await world.tenants.update(master, "acme", TenantPatch(guardrail_policy_ids=()))
    # Routers cache verdicts that carry the tenant's policies: the change is announced.
    assert world.notes.seen[-1] == ("tenant:acme", KeyChange.TENANT_UPDATED)
    assert (await world.admission.authorize(secret, "")).key.effective_policy_ids == ()


async def test_guardrail_policy_ids_are_bounded_and_well_formed(world):
    with pytest.raises(InvalidRequest) as err:
        await world.key(guardrail_policy_ids=("pol a",))
    assert err.value.param == "guardrail_policy_ids[0]"
    with pytest.raises(InvalidRequest) as err:
        await world.key(guardrail_policy_ids=tuple(f"pol_{i}" for i in range(17)))
    assert err.value.param == "guardrail_policy_ids"


async def test_a_keys_cache_setting_overrides_its_tenants_and_changes_are_announced(world):
    master = await world.master()
    await world.tenants.create(master, "Cached", "cached", cache_responses=True)
    follows, follows_secret = await world.key(tenant_id="cached")
    opted_out, out_secret = await world.key(tenant_id="cached", cache_responses=False)
    assert follows.cache_responses is None and opted_out.cache_responses is False
    assert (await world.admission.authorize(follows_secret, "")).key.effective_cache_responses
    assert not (await world.admission.authorize(out_secret, "")).key.effective_cache_responses

    await world.keys.update(master, opted_out.key_id, KeyPatch(cache_responses=None))
    assert world.notes.seen[-1] == (opted_out.key_id, KeyChange.UPDATED)
    assert (await world.admission.authorize(out_secret, "")).key.effective_cache_responses
    await world.tenants.update(master, "cached", TenantPatch(cache_responses=False))
    assert world.notes.seen[-1] == ("tenant:cached", KeyChange.TENANT_UPDATED)
    assert not (await world.admission.authorize(follows_secret, "")).key.effective_cache_responses
    await world.keys.update(master, follows.key_id, KeyPatch(cache_responses=True))
    assert (await world.admission.authorize(follows_secret, "")).key.effective_cache_responses
    assert (await world.tenants.get(master, "cached")).cache_responses is False
