"""Verdict cache and admission: hits never reach auth, TTLs, keys.changed drops, refusals, outages."""

from __future__ import annotations

import asyncio

import pytest
from switchboard_common.errors import PermissionDenied, ServiceUnavailable, Unauthenticated

from switchboard_router.admission import Admission
from switchboard_router.auth_client import Verdict
from switchboard_router.domain import Caller
from switchboard_router.verdicts import VerdictCache, key_digest


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

    async def authorize(self, key: str, model: str) -> Verdict:
        self.calls.append((key, model))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ServiceUnavailable("auth is unavailable (unavailable)")
        if key == "bad":
            raise Unauthenticated("Incorrect API key provided.")
        if model == "forbidden":
            raise PermissionDenied("not this model")
        return Verdict(Caller(key_id=f"id-{key}", tenant_id="t"), ttl_seconds=self.ttl, expires_at=None)


def _admission(auth: FakeAuthClient, clock: Clock, size: int = 100) -> Admission:
    return Admission(auth, VerdictCache(size), default_ttl=60, refusal_ttl=5, clock=clock,
                     wall_clock=lambda: 0.0)


async def test_hits_do_not_call_auth_until_the_ttl_passes():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    for _ in range(3):
        assert (await admission.admit("k1", "m")).key_id == "id-k1"
    assert auth.calls == [("k1", "m")]
    await admission.admit("k1", "other-model")  # cached per (key, model)
    assert len(auth.calls) == 2
    clock.now += 31
    await admission.admit("k1", "m")
    assert len(auth.calls) == 3


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
    await admission.admit("k1", "b")
    await admission.admit("k2", "a")
    admission.drop_key("id-k1")
    await admission.admit("k1", "a")
    await admission.admit("k1", "b")
    await admission.admit("k2", "a")
    assert auth.calls.count(("k1", "a")) == 2 and auth.calls.count(("k2", "a")) == 1


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
        with pytest.raises(PermissionDenied):
            await admission.admit("k1", "forbidden")
    assert len(auth.calls) == 2
    clock.now += 6
    with pytest.raises(Unauthenticated):
        await admission.admit("bad", "m")
    assert len(auth.calls) == 3
    with pytest.raises(Unauthenticated):
        await admission.admit(None, "m")  # no key: auth is not asked
    assert len(auth.calls) == 3


async def test_auth_down_is_503_for_uncached_keys_only():
    auth, clock = FakeAuthClient(), Clock()
    admission = _admission(auth, clock)
    await admission.admit("k1", "m")
    auth.down = True
    assert (await admission.admit("k1", "m")).key_id == "id-k1"
    for _ in range(2):  # an outage is not cached
        with pytest.raises(ServiceUnavailable):
            await admission.admit("k2", "m")
    assert auth.calls.count(("k2", "m")) == 2


def test_cache_evicts_the_oldest_when_full_and_keeps_its_index_clean():
    cache = VerdictCache(2)
    caller = Caller(key_id="id", tenant_id="t")
    for i in range(3):
        cache.put((key_digest(f"k{i}"), "m"), caller, expires=10, generation=0)
    assert len(cache) == 2
    assert cache.get((key_digest("k0"), "m"), now=0) is None
    assert cache.get((key_digest("k2"), "m"), now=0) is caller
    assert cache.get((key_digest("k2"), "m"), now=10) is None  # expired
    assert cache.drop_key("id") == 1
    assert len(cache) == 0
