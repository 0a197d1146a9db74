"""Authorize outcomes, the admin check and key administration, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common import db
from switchboard_common.errors import (Conflict, InvalidRequest, MissingApiKey, NotFound, PermissionDenied,
                                       Unauthenticated)

from switchboard_auth.admission import Admission
from switchboard_auth.domain import KeyChange, KeyPatch, NewKey, RateLimits
from switchboard_auth.hashing import KeyHasher, display_prefix
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.repository import Repository
from switchboard_auth.tables import metadata
from switchboard_auth.tenants import TenantAdmin

MASTER = "sk-master-unit-test-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Notifications:
    def __init__(self) -> None:
        self.seen: list[tuple[str, KeyChange]] = []

    async def __call__(self, key, change) -> None:
        self.seen.append((key.key_id, change))


@pytest.fixture
async def world(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    await db.create_schema(engine, metadata)
    repo, hasher, clock, notes = Repository(engine), KeyHasher(b"unit"), Clock(), Notifications()
    tenants = TenantAdmin(repo, clock)
    await tenants.ensure_default()
    await repo.upsert_master(hasher.hash(MASTER), display_prefix(MASTER), clock())

    class World:
        pass

    w = World()
    w.repo, w.clock, w.notes, w.tenants = repo, clock, notes, tenants
    w.admission = Admission(repo, hasher, cache_ttl_seconds=60, clock=clock)
    w.keys = KeyAdmin(repo, hasher, notes, clock)
    yield w
    await engine.dispose()


async def test_master_key_is_an_admin_of_the_default_tenant(world):
    verdict = await world.admission.authorize(MASTER, "any-model")
    assert (verdict.key.key_id, verdict.key.tenant_id, verdict.key.is_admin) == (
        "master", "default", True)
    assert verdict.cache_ttl_seconds == 60
    assert (await world.admission.require_admin(MASTER)).key_id == "master"


async def test_missing_and_unknown_keys_are_401(world):
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize("", "gpt-4o")
    assert err.value.code == "missing_api_key"
    assert err.value.message == MissingApiKey().message  # OpenAI's own wording, shared by every service
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize("sk-sb-not-a-key", "gpt-4o")
    assert (err.value.code, err.value.message) == ("invalid_api_key", "Incorrect API key provided.")


async def test_created_key_authorizes_only_its_models(world):
    created = await world.keys.create(NewKey(
        name="ci", allowed_models=("gpt-4o*", "claude-3-haiku"),
        rate_limits=RateLimits(requests_per_minute=60), guardrail_policy_ids=("pii",)))
    assert created.secret.startswith("sk-sb-")
    assert created.key.key_prefix == created.secret[:8]
    verdict = await world.admission.authorize(created.secret, "gpt-4o-mini")
    assert verdict.key.key_id == created.key.key_id
    assert verdict.key.tenant_id == "default" and not verdict.key.is_admin
    assert verdict.key.rate_limits.requests_per_minute == 60
    assert verdict.key.guardrail_policy_ids == ("pii",)
    await world.admission.authorize(created.secret, "claude-3-haiku")
    await world.admission.authorize(created.secret, "")  # the key alone
    with pytest.raises(PermissionDenied) as err:
        await world.admission.authorize(created.secret, "claude-3-opus")
    assert err.value.message == "This key may not use model 'claude-3-opus'."
    assert (err.value.param, err.value.code) == ("model", "model_not_allowed")
    assert world.notes.seen == [(created.key.key_id, KeyChange.CREATED)]


async def test_expired_key_is_401_and_ttl_stops_at_expiry(world):
    created = await world.keys.create(NewKey(expires_in_seconds=30))
    assert created.key.expires_at == world.clock.now + timedelta(seconds=30)
    verdict = await world.admission.authorize(created.secret, "m")
    assert verdict.cache_ttl_seconds == 30  # a router must not cache past the expiry
    world.clock.now += timedelta(seconds=30)
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(created.secret, "m")
    assert err.value.code == "key_expired"


async def test_revoked_key_is_401_and_revoking_twice_keeps_the_first_time(world):
    created = await world.keys.create(NewKey())
    revoked = await world.keys.revoke(created.key.key_id)
    assert revoked.revoked_at == world.clock.now
    with pytest.raises(Unauthenticated) as err:
        await world.admission.authorize(created.secret, "m")
    assert err.value.code == "key_revoked"
    world.clock.now += timedelta(hours=1)
    again = await world.keys.revoke(created.key.key_id)
    assert again.revoked_at == revoked.revoked_at
    assert [c for _, c in world.notes.seen] == [KeyChange.CREATED, KeyChange.REVOKED,
                                                KeyChange.REVOKED]


async def test_admin_check(world):
    plain = await world.keys.create(NewKey())
    with pytest.raises(PermissionDenied) as err:
        await world.admission.require_admin(plain.secret)
    assert (err.value.message, err.value.code) == ("admin key required", "admin_key_required")
    with pytest.raises(Unauthenticated):
        await world.admission.require_admin("")
    await world.keys.revoke(plain.key.key_id)
    with pytest.raises(Unauthenticated):
        await world.admission.require_admin(plain.secret)


@pytest.mark.parametrize("new, param", [
    (NewKey(allowed_models=("gpt-*-mini",)), "allowed_models"),
    (NewKey(allowed_models=("",)), "allowed_models"),
    (NewKey(rate_limits=RateLimits(requests_per_minute=0)), "rate_limits.requests_per_minute"),
    (NewKey(rate_limits=RateLimits(tokens_per_minute=-5)), "rate_limits.tokens_per_minute"),
    (NewKey(max_budget_micros_usd=-1), "max_budget_micros_usd"),
    (NewKey(expires_in_seconds=0), "expires_in_seconds"),
    (NewKey(expires_in_seconds=5, expires_at=datetime(2030, 1, 1, tzinfo=UTC)),
     "expires_in_seconds"),
    (NewKey(expires_at=datetime(2020, 1, 1, tzinfo=UTC)), "expires_at"),
    (NewKey(name="x" * 201), "name"),
    (NewKey(guardrail_policy_ids=("",)), "guardrail_policy_ids"),
])
async def test_create_validation_names_the_field(world, new, param):
    with pytest.raises(InvalidRequest) as err:
        await world.keys.create(new)
    assert err.value.param == param
    assert world.notes.seen == []


async def test_tenants(world):
    with pytest.raises(NotFound) as err:
        await world.keys.create(NewKey(tenant_id="acme"))
    assert err.value.param == "tenant_id"
    world.clock.now += timedelta(seconds=1)
    tenant = await world.tenants.create("Acme Inc", "acme")
    assert (tenant.tenant_id, tenant.name) == ("acme", "Acme Inc")
    created = await world.keys.create(NewKey(tenant_id="acme"))
    assert (await world.admission.authorize(created.secret, "m")).key.tenant_id == "acme"
    with pytest.raises(Conflict):
        await world.tenants.create("again", "acme")
    with pytest.raises(InvalidRequest) as err:
        await world.tenants.create("bad", "no spaces")
    assert err.value.param == "tenant_id"
    world.clock.now += timedelta(seconds=1)
    generated = await world.tenants.create("", "")
    assert generated.tenant_id.startswith("tenant_") and generated.name == generated.tenant_id
    assert [t.tenant_id for t in await world.tenants.list()] == [
        "default", "acme", generated.tenant_id]


async def test_update_patches_only_what_is_set(world):
    created = await world.keys.create(NewKey(name="a", allowed_models=("m1",),
                                             rate_limits=RateLimits(60, 1000)))
    key = await world.keys.update(created.key.key_id, KeyPatch(
        allowed_models=("m2*",), requests_per_minute=None, max_budget_micros_usd=5_000_000))
    assert key.name == "a" and key.allowed_models == ("m2*",)
    assert key.rate_limits == RateLimits(None, 1000)
    assert key.max_budget_micros_usd == 5_000_000
    await world.admission.authorize(created.secret, "m2-large")
    with pytest.raises(PermissionDenied):
        await world.admission.authorize(created.secret, "m1")
    expiry = world.clock.now + timedelta(days=1)
    assert (await world.keys.update(key.key_id, KeyPatch(expires_at=expiry))).expires_at == expiry
    assert (await world.keys.update(key.key_id, KeyPatch(expires_at=None))).expires_at is None
    assert world.notes.seen[-1] == (key.key_id, KeyChange.UPDATED)
    with pytest.raises(NotFound):
        await world.keys.update("key_nope", KeyPatch(name="x"))
    with pytest.raises(InvalidRequest) as err:
        await world.keys.update("master", KeyPatch(name="x"))
    assert err.value.code == "master_key_immutable"
    with pytest.raises(InvalidRequest):
        await world.keys.revoke("master")


async def test_listing_pages_through_every_key_once(world):
    made = set()
    for i in range(7):
        made.add((await world.keys.create(NewKey(name=f"k{i}"))).key.key_id)
        world.clock.now += timedelta(microseconds=1 if i % 2 else 0)  # ties on created_at too
    seen, cursor = [], None
    while True:
        page = await world.keys.list("", cursor, 3)
        seen += [k.key_id for k in page.keys]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8  # seven keys and the master
    assert set(seen) == made | {"master"}
    assert len((await world.keys.list("acme-none", None, 10)).keys) == 0


async def test_master_key_change_replaces_the_hash(world):
    hasher = KeyHasher(b"unit")
    await world.repo.upsert_master(hasher.hash("sk-new-master-key-0000000000"), "s", world.clock())
    with pytest.raises(Unauthenticated):
        await world.admission.authorize(MASTER, "")
    assert (await world.admission.authorize("sk-new-master-key-0000000000", "")).key.is_admin
