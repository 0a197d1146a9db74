"""Leased quota on one SQLite file: grants never pass a limit, windows turn over, returns and
charges move the counters, parallel slots lapse."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common.errors import InvalidRequest, NotFound, Unauthenticated

from switchboard_auth.domain import RateLimits
from switchboard_auth.quota import Windows


async def _limited(world, **limits):
    key, _ = await world.key(rate_limits=RateLimits(**limits))
    return key.key_id


async def test_windows_are_utc_minutes_and_days():
    win = Windows.at(datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=UTC))
    assert datetime.fromtimestamp(win.minute, UTC) == datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    assert datetime.fromtimestamp(win.day, UTC) == datetime(2025, 3, 4, tzinfo=UTC)


async def test_concurrent_single_request_leases_grant_exactly_the_limit(world):
    key_id = await _limited(world, requests_per_minute=50)
    leases = await asyncio.gather(*(world.quota.lease(key_id, f"r{i % 2}", 1, 0, 0)
                                    for i in range(200)))
    assert sum(lease.requests for lease in leases) == 50
    assert min(lease.remaining.requests for lease in leases) == 0


async def test_a_slice_is_cut_to_what_is_left_and_the_next_minute_starts_afresh(world):
    key_id = await _limited(world, requests_per_minute=25)
    first = await world.quota.lease(key_id, "r1", 10, 0, 0)
    assert (first.requests, first.remaining.requests) == (10, 15)
    assert first.limits.requests_per_minute == 25
    assert [(await world.quota.lease(key_id, "r2", 10, 0, 0)).requests for _ in range(3)] == [
        10, 5, 0]
    world.clock.now += timedelta(minutes=1)
    assert (await world.quota.lease(key_id, "r2", 10, 0, 0)).requests == 10


async def test_tokens_take_from_the_minute_and_the_day(world):
    key_id = await _limited(world, tokens_per_minute=1000, tokens_per_day=1500)
    assert (await world.quota.lease(key_id, "r", 0, 800, 0)).tokens == 800
    assert (await world.quota.lease(key_id, "r", 0, 800, 0)).tokens == 200  # the minute's rest
    world.clock.now += timedelta(minutes=1)
    lease = await world.quota.lease(key_id, "r", 0, 800, 0)
    assert lease.tokens == 500  # the day's rest, though the minute had 1000
    assert (lease.remaining.tokens, lease.remaining.tokens_today) == (500, 0)
    world.clock.now += timedelta(days=1)
    assert (await world.quota.lease(key_id, "r", 0, 800, 0)).tokens == 800


async def test_unused_quota_goes_back_and_the_day_gets_a_past_minutes_tokens(world):
    key_id = await _limited(world, requests_per_minute=10, tokens_per_minute=1000,
                            tokens_per_day=2000)
    lease = await world.quota.lease(key_id, "r", 10, 1000, 0)
    started = datetime.fromtimestamp(lease.windows.minute, UTC)
    back = await world.quota.give_back(key_id, "r", started, 4, 300, 0)
    assert (back.requests, back.tokens) == (4, 300)
    again = await world.quota.lease(key_id, "r", 10, 1000, 0)
    assert (again.requests, again.tokens) == (4, 300)
    world.clock.now += timedelta(minutes=1)
    late = await world.quota.give_back(key_id, "r", started, 4, 500, 0)
    assert (late.requests, late.tokens) == (0, 500)  # the minute is over; the day is not
    assert (await world.quota.lease(key_id, "r", 0, 1000, 0)).remaining.tokens_today == 500
    # More than was leased never drives a counter below zero.
    world.clock.now += timedelta(days=1)
    assert (await world.quota.give_back(key_id, "r", world.clock.now, 5, 5, 0)).requests == 0
    with pytest.raises(InvalidRequest):
        await world.quota.give_back(key_id, "r", world.clock.now + timedelta(minutes=2), 1, 0, 0)


async def test_tokens_beyond_a_slice_are_charged_whatever_the_limit(world):
    key_id = await _limited(world, tokens_per_minute=1000, tokens_per_day=10_000)
    assert (await world.quota.lease(key_id, "r", 0, 900, 0)).tokens == 900
    left = await world.quota.charge_tokens(key_id, 400)  # the request used 1300
    assert (left.tokens, left.tokens_today) == (0, 8700)
    assert (await world.quota.lease(key_id, "r", 0, 100, 0)).tokens == 0
    with pytest.raises(NotFound):
        await world.quota.charge_tokens("key_missing", 1)


async def test_keys_without_limits_are_granted_what_they_ask(world):
    key_id = await _limited(world)
    lease = await world.quota.lease(key_id, "r", 7, 700, 3)
    assert (lease.requests, lease.tokens, lease.parallel) == (7, 700, 3)
    assert lease.remaining.requests is None and lease.limits == RateLimits()


async def test_parallel_slots_across_replicas_never_pass_the_limit_and_lapse(world):
    key_id = await _limited(world, max_parallel_requests=5)
    grants = await asyncio.gather(*(world.quota.lease(key_id, f"r{i % 3}", 1, 0, 1)
                                    for i in range(30)))
    assert sum(g.parallel for g in grants) == 5
    held = {f"r{i}": 0 for i in range(3)}
    for i, g in enumerate(grants):
        held[f"r{i % 3}"] += g.parallel
    back = await world.quota.give_back(key_id, "r0", None, 0, 0, held["r0"] + 3)
    assert back.parallel == held["r0"]  # never more than it held
    assert (await world.quota.lease(key_id, "r9", 0, 0, 10)).parallel == held["r0"]
    # r1 and r2 stop renewing: their slots lapse after the lease time; r9 renews its own.
    world.clock.now += timedelta(seconds=40)
    assert (await world.quota.lease(key_id, "r9", 0, 0, 0)).parallel_held == held["r0"]
    world.clock.now += timedelta(seconds=30)
    lease = await world.quota.lease(key_id, "r9", 0, 0, 10)
    assert lease.parallel == 5 - held["r0"] and lease.parallel_held == 5
    with pytest.raises(InvalidRequest) as err:
        await world.quota.lease(key_id, "", 0, 0, 1)
    assert err.value.param == "replica_id"


async def test_leases_for_dead_keys_and_absurd_asks_are_refused(world):
    master = await world.master()
    key_id = await _limited(world, requests_per_minute=5)
    with pytest.raises(InvalidRequest) as err:
        await world.quota.lease(key_id, "r", -1, 0, 0)
    assert err.value.param == "requests"
    with pytest.raises(InvalidRequest):
        await world.quota.lease(key_id, "r", 0, 10**9, 0)
    await world.keys.revoke(master, key_id)
    with pytest.raises(Unauthenticated) as err:
        await world.quota.lease(key_id, "r", 1, 0, 0)
    assert err.value.code == "key_revoked"
    with pytest.raises(NotFound):
        await world.quota.lease("key_missing", "r", 1, 0, 0)


async def test_old_windows_and_lapsed_slots_are_forgotten(world):
    key_id = await _limited(world, requests_per_minute=5, tokens_per_day=100,
                            max_parallel_requests=2)
    await world.quota.lease(key_id, "r", 1, 10, 1)
    assert await world.quota.forget_old_windows() == 0
    world.clock.now += timedelta(days=2)
    assert await world.quota.forget_old_windows() == 3  # two counters and r's slot
    with pytest.raises(InvalidRequest) as err:
        await world.quota.lease(key_id, "r" * 129, 1, 0, 0)
    assert err.value.param == "replica_id"
