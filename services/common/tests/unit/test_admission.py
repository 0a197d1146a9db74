"""Verdict cache and admission (the router's and billing's): one verdict per key, models checked
locally, hits never reach auth, the age bound and expiry, keys.changed drops (a key or a tenant),
refusals in their own cache, outages."""

from __future__ import annotations

import asyncio

import pytest

from switchboard_common.admission import Admission, RefusalCache, VerdictCache, key_digest
from switchboard_common.auth_client import Verdict
from switchboard_common.caller import Caller
from switchboard_common.errors import PermissionDenied, ServiceUnavailable, Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAuthClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.down = False
        self.ttl = 30
        self.gate: asyncio.Event | None = None
        self.models: dict[str, frozenset[str]] = {}
        self.refused: set[str] = set()
        self.tenants: dict[str, str] = {}
        self.expires: dict[str, float] = {}

    async def authorize(self, key: str, model: str) -> Verdict:
        self.calls.append((key, model))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ServiceUnavailable("auth is unavailable (unavailable)")
        if key == "bad" or key in self.refused:
            raise Unauthenticated("Incorrect API key provided.")
        caller = Caller(key_id=f"id-{key}", tenant_id=self.tenants.get(key, "t"),
                        allowed_models=self.models.get(key, frozenset()))
        return Verdict(caller, ttl_seconds=self.ttl, expires_at=self.expires.get(key))


def _admission(auth: FakeAuthClient, clock: Clock, size: int = 100, wall=lambda: 0.0,
               refusals: RefusalCache | None = None, **ttls: float) -> Admission:
    return Admission(auth.authorize, VerdictCache(size), clock=clock, wall_clock=wall,
                     refusals=refusals, **{"default_ttl": 60, "refusal_ttl": 5, **ttls})


async def test_hits_do_not_call_auth_until_the_ttl_passes():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    for _ in range(3):
        assert (await admission.admit("k1", "m")).key_id == "id-k1"
    await admission.admit("k1", "other-model")  # one verdict per key, whatever the model
    assert auth.calls == [("k1", "")]
    clock.now += 31
    await admission.admit("k1", "m")
    assert len(auth.calls) == 2


async def test_zero_ttl_from_auth_uses_the_default_and_key_expiry_caps_it():
    auth, clock = FakeAuthClient(), Clock()
    auth.ttl = 0
    admission = _admission(auth, clock)
    await admission.admit("k1", "m")
    clock.now += 59
    await admission.admit("k1", "m")
    assert len(auth.calls) == 1
    clock.now += 2
    await admission.admit("k1", "m")
    assert len(auth.calls) == 2


async def test_keys_changed_drops_every_verdict_of_that_key():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    await admission.admit("k1", "a")
    await admission.admit("k2", "a")
    admission.drop_key("id-k1")
    await admission.admit("k1", "a")
    await admission.admit("k1", "b")
    await admission.admit("k2", "a")
    assert auth.calls.count(("k1", "")) == 2 and auth.calls.count(("k2", "")) == 1


async def test_a_drop_during_the_auth_call_is_not_undone():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    auth.gate = asyncio.Event()
    pending = asyncio.create_task(admission.admit("k1", "m"))
    while not auth.calls:  # auth is now working on the answer
        await asyncio.sleep(0)
    admission.drop_key("id-k1")  # the verdict in flight may predate the change
    auth.gate.set()
    await pending
    await admission.admit("k1", "m")
    assert len(auth.calls) == 2


async def test_concurrent_misses_make_one_call():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    auth.gate = asyncio.Event()
    waiting = [asyncio.create_task(admission.admit("k1", "m")) for _ in range(5)]
    await asyncio.sleep(0)
    auth.gate.set()
    assert {c.key_id for c in await asyncio.gather(*waiting)} == {"id-k1"}
    assert len(auth.calls) == 1


async def test_refusals_are_cached_briefly():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await admission.admit("bad", "m")
    assert len(auth.calls) == 1
    clock.now += 6
    with pytest.raises(Unauthenticated):
        await admission.admit("bad", "m")
    assert len(auth.calls) == 2
    with pytest.raises(Unauthenticated):
        await admission.admit(None, "m")  # no key: auth is not asked
    assert len(auth.calls) == 2


async def test_auth_down_is_503_for_uncached_keys_only():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    await admission.admit("k1", "m")
    auth.down = True
    assert (await admission.admit("k1", "m")).key_id == "id-k1"
    for _ in range(2):  # an outage is not cached
        with pytest.raises(ServiceUnavailable):
            await admission.admit("k2", "m")
    assert auth.calls.count(("k2", "")) == 2


def test_cache_evicts_the_least_recently_used_and_keeps_its_indexes_clean():
    cache = VerdictCache(2)
    callers = [Caller(key_id=f"id{i}", tenant_id="t") for i in range(3)]
    cache.put(key_digest("k0"), callers[0], fresh_until=10, expires_at=None, generation=0)
    cache.put(key_digest("k1"), callers[1], fresh_until=10, expires_at=None, generation=0)
    assert cache.get(key_digest("k0"), now=0, wall_now=0) is callers[0]  # k0 is used again
    cache.put(key_digest("k2"), callers[2], fresh_until=10, expires_at=None, generation=0)
    assert len(cache) == 2
    assert cache.get(key_digest("k1"), now=0, wall_now=0) is None  # least recently used
    assert cache.get(key_digest("k0"), now=0, wall_now=0) is callers[0]
    assert cache.get(key_digest("k2"), now=10, wall_now=0) is None  # past its age bound
    assert cache.drop_tenant("t") == 1
    assert len(cache) == 0 and cache.drop_key("id0") == 0


async def test_max_ttl_caps_auths_and_refusal_ttl_zero_keeps_no_refusal():
    # Billing's settings: verdicts for at most auth_cache_seconds, refusals asked again each time.
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock, default_ttl=10, max_ttl=10, refusal_ttl=0)
    await admission.admit("k1")
    clock.now += 9
    await admission.admit("k1")
    assert auth.calls == [("k1", "")]  # the key alone: no model
    clock.now += 2
    await admission.admit("k1")
    assert len(auth.calls) == 2
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await admission.admit("bad")
    assert auth.calls.count(("bad", "")) == 2


async def test_allowed_models_are_checked_locally_against_one_verdict():
    auth, clock = FakeAuthClient(), Clock()
    auth.models["k1"] = frozenset({"gpt-4o*", "anthropic/*"})
    admission = _admission(auth, clock)
    await admission.admit("k1", "gpt-4o-mini")
    await admission.admit("k1", "anthropic/claude-3-opus")
    await admission.admit("k1")  # the key alone
    for model in ("claude-3-opus", "gpt-4", "openai/gpt-4o"):
        with pytest.raises(PermissionDenied) as refused:
            await admission.admit("k1", model)
        assert refused.value.code == "model_not_allowed" and refused.value.param == "model"
    assert auth.calls == [("k1", "")]


async def test_a_passthrough_route_cannot_flush_other_keys():
    # Before: one entry per (key, model), so one key asking for openai/<anything> evicted all.
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock, size=2)
    await admission.admit("victim", "gpt-4o")
    for i in range(50):
        await admission.admit("flooder", f"openai/model-{i}")
    await admission.admit("victim", "gpt-4o")
    assert auth.calls.count(("victim", "")) == 1 and auth.calls.count(("flooder", "")) == 1


async def test_bogus_keys_cannot_evict_valid_verdicts():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock, size=2, refusals=RefusalCache(3))
    await admission.admit("k1")
    for i in range(100):
        auth.refused.add(f"bogus-{i}")
        with pytest.raises(Unauthenticated):
            await admission.admit(f"bogus-{i}")
    await admission.admit("k1")
    assert auth.calls.count(("k1", "")) == 1


async def test_keys_changed_for_a_tenant_drops_its_keys_and_every_refusal():
    auth, clock = FakeAuthClient(), Clock()
    auth.tenants.update({"a1": "acme", "a2": "acme", "b1": "beta"})
    admission = _admission(auth, clock)
    for key in ("a1", "a2", "b1"):
        await admission.admit(key)
    with pytest.raises(Unauthenticated):
        await admission.admit("bad")
    admission.keys_changed("", "acme")  # the tenant's defaults changed, or it is gone
    for key in ("a1", "a2", "b1"):
        await admission.admit(key)
    assert [auth.calls.count((k, "")) for k in ("a1", "a2", "b1")] == [2, 2, 1]
    with pytest.raises(Unauthenticated):  # a refusal may have been one of the tenant's keys
        await admission.admit("bad")
    assert auth.calls.count(("bad", "")) == 2


async def test_expiry_is_checked_against_the_wall_clock_on_every_request():
    auth, clock, wall = FakeAuthClient(), Clock(), Clock()
    auth.expires["k1"] = wall.now + 100
    admission = _admission(auth, clock, wall=wall)
    await admission.admit("k1")
    wall.now += 100  # the wall clock reached the expiry; the monotonic one did not move
    auth.refused.add("k1")
    with pytest.raises(Unauthenticated):
        await admission.admit("k1")
    assert auth.calls == [("k1", ""), ("k1", "")]


async def test_the_age_bound_caps_auths_ttl():
    # The router's verdict_max_age_seconds: a missed keys.changed lasts at most this long.
    auth, clock = FakeAuthClient(), Clock()
    auth.ttl = 3600
    admission = _admission(auth, clock, default_ttl=30, max_ttl=30)
    await admission.admit("k1")
    clock.now += 29
    await admission.admit("k1")
    clock.now += 1
    await admission.admit("k1")
    assert len(auth.calls) == 2
