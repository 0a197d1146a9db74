"""The router's leased rate limits: slices leased and spent locally, exact across replicas,
tokens reserved and settled with real counts, parallel slots given back, windows that end,
refusals with Retry-After and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import pytest
from switchboard_common.auth_client import Grant
from switchboard_common.caller import Caller, RateLimits

from switchboard_router.key_quota import KeyRateLimited, _duration
from switchboard_router.limits import Limiter, estimate_tokens


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:  # the start of a UTC minute
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeLedger:
    """Auth's quota ledger as its statements behave: a grant never passes the limit."""

    clock: Clock
    limits: dict[str, RateLimits] = field(default_factory=dict)
    used: Counter = field(default_factory=Counter)  # (key, kind, window) -> used
    held: Counter = field(default_factory=Counter)  # (key, replica) -> parallel slots
    calls: list[tuple] = field(default_factory=list)
    gate: asyncio.Event | None = None

    def _windows(self) -> tuple[int, int]:
        ts = int(self.clock())
        return ts - ts % 60, ts - ts % 86_400

    def _grant(self, key: str, kind: str, window: int, wanted: int, limit: int | None) -> int:
        if limit is None:
            return wanted
        got = max(0, min(wanted, limit - self.used[key, kind, window]))
        self.used[key, kind, window] += got
        return got

    def _left(self, key: str, kind: str, window: int, limit: int | None) -> int | None:
        return None if limit is None else max(0, limit - self.used[key, kind, window])

    async def lease_quota(self, key_id, replica_id, *, requests=0, tokens=0, parallel=0) -> Grant:
        self.calls.append(("lease", key_id, replica_id, requests, tokens, parallel))
        if self.gate is not None:
            await self.gate.wait()
        lim, (minute, day) = self.limits[key_id], self._windows()
        got_r = self._grant(key_id, "rpm", minute, requests, lim.requests_per_minute)
        got_t = self._grant(key_id, "tpm", minute, tokens, lim.tokens_per_minute)
        if lim.tokens_per_day is not None:
            today = self._grant(key_id, "tpd", day, got_t, lim.tokens_per_day)
            if lim.tokens_per_minute is not None:
                self.used[key_id, "tpm", minute] -= got_t - today
            got_t = today
        got_p = parallel
        if lim.max_parallel_requests is not None:
            others = sum(n for (k, _r), n in self.held.items() if k == key_id)
            got_p = max(0, min(parallel, lim.max_parallel_requests - others))
            self.held[key_id, replica_id] += got_p
        return Grant(requests=got_r, tokens=got_t, parallel=got_p,
                     parallel_held=self.held[key_id, replica_id], window_start=minute,
                     window_end=minute + 60, day_end=day + 86_400, limits=lim,
                     requests_remaining=self._left(key_id, "rpm", minute, lim.requests_per_minute),
                     tokens_remaining=self._left(key_id, "tpm", minute, lim.tokens_per_minute),
                     tokens_remaining_today=self._left(key_id, "tpd", day, lim.tokens_per_day))

    async def return_quota(self, key_id, replica_id, window_start, *, requests=0, tokens=0,
                           parallel=0) -> None:
        self.calls.append(("return", key_id, replica_id, requests, tokens, parallel))
        minute, day = self._windows()
        if window_start == minute:
            self.used[key_id, "rpm", minute] -= requests
            self.used[key_id, "tpm", minute] -= tokens
        self.used[key_id, "tpd", day] -= tokens
        self.held[key_id, replica_id] -= min(parallel, self.held[key_id, replica_id])

    async def charge_tokens(self, key_id, replica_id, tokens) -> None:
        self.calls.append(("charge", key_id, replica_id, tokens))
        minute, day = self._windows()
        self.used[key_id, "tpm", minute] += tokens
        self.used[key_id, "tpd", day] += tokens

    def count(self, what: str) -> int:
        return sum(1 for c in self.calls if c[0] == what)


def _setup(**limits: int) -> tuple[FakeLedger, Clock, Caller]:
    clock = Clock()
    ledger = FakeLedger(clock)
    caller = Caller(key_id="key_1", tenant_id="acme", rate_limits=RateLimits(**limits))
    ledger.limits["key_1"] = caller.rate_limits
    return ledger, clock, caller


def _limiter(ledger: FakeLedger, clock: Clock, replica: str = "r1") -> Limiter:
    return Limiter(ledger, replica, clock=clock, monotonic=clock)


async def _drain(limiter: Limiter) -> None:
    await asyncio.sleep(0)
    if limiter._tasks:
        await asyncio.wait(set(limiter._tasks))


async def test_a_key_without_limits_costs_nothing():
    ledger, clock, _ = _setup()
    limiter = _limiter(ledger, clock)
    assert await limiter.admit(Caller(key_id="k", tenant_id="t"), 100) is None
    assert ledger.calls == [] and len(limiter) == 0


async def test_requests_come_from_slices_and_a_spent_minute_is_refused_locally():
    ledger, clock, caller = _setup(requests_per_minute=50)
    limiter = _limiter(ledger, clock)
    clock.now += 12  # 48 s left of the minute
    for _ in range(50):
        await limiter.admit(caller, 1)
    assert ledger.count("lease") == 10  # slices of a tenth of the limit
    for _ in range(3):
        with pytest.raises(KeyRateLimited) as refused:
            await limiter.admit(caller, 1)
    error = refused.value
    assert (error.http_status, error.code, error.error_type) == (429, "rate_limit_exceeded",
                                                                 "requests")
    assert error.retry_after == 48 and "requests per minute (RPM)" in error.message
    md = dict(error.trailing_metadata())
    assert md["retry-after"] == "48"
    assert md["x-ratelimit-limit-requests"] == "50"
    assert md["x-ratelimit-remaining-requests"] == "0"
    assert md["x-ratelimit-reset-requests"] == "48s"
    assert ledger.count("lease") == 10  # the last slice left 0: refused here, auth not asked
    clock.now += 48  # a new minute
    ticket = await limiter.admit(caller, 1)
    assert ticket is not None and dict(ticket.headers)["x-ratelimit-remaining-requests"] == "49"


async def test_two_replicas_together_admit_exactly_the_limit():
    ledger, clock, caller = _setup(requests_per_minute=50)
    replicas = [_limiter(ledger, clock, "r1"), _limiter(ledger, clock, "r2")]

    async def one(i: int) -> bool:
        try:
            await replicas[i % 2].admit(caller, 1)
        except KeyRateLimited:
            return False
        return True

    outcomes = await asyncio.gather(*(one(i) for i in range(200)))
    assert outcomes.count(True) == 50 and outcomes.count(False) == 150


async def test_concurrent_misses_on_one_replica_share_one_lease():
    ledger, clock, caller = _setup(requests_per_minute=1000)
    limiter = _limiter(ledger, clock)
    ledger.gate = asyncio.Event()
    waiting = [asyncio.create_task(limiter.admit(caller, 1)) for _ in range(20)]
    await asyncio.sleep(0.01)
    ledger.gate.set()
    await asyncio.gather(*waiting)
    assert ledger.count("lease") == 1  # one slice of 100 served all 20


async def test_tokens_are_reserved_then_settled_with_the_real_count():
    ledger, clock, caller = _setup(tokens_per_minute=1000)
    limiter = _limiter(ledger, clock)
    ticket = await limiter.admit(caller, 300)
    assert ticket is not None and ticket.tokens == 300
    assert ledger.calls[0] == ("lease", "key_1", "r1", 0, 300, 0)  # the slice covers the estimate
    limiter.settle(ticket, 120)  # 180 back to this replica's slice
    assert ticket.quota.tokens == 180
    big = await limiter.admit(caller, 150)
    limiter.settle(big, 400)  # 150 reserved, 30 more from the slice, 220 charged to auth
    await _drain(limiter)
    assert ledger.calls[-1] == ("charge", "key_1", "r1", 220)
    assert ledger.used["key_1", "tpm", int(clock.now)] == 300 + 220


async def test_a_tpm_limit_holds_within_one_requests_tokens():
    ledger, clock, caller = _setup(tokens_per_minute=1000)
    replicas = [_limiter(ledger, clock, "r1"), _limiter(ledger, clock, "r2")]
    per_request = 90

    async def one(i: int) -> int:
        try:
            ticket = await replicas[i % 2].admit(caller, per_request)
        except KeyRateLimited as exc:
            assert exc.error_type == "tokens"
            return 0
        await asyncio.sleep(0)
        replicas[i % 2].settle(ticket, per_request)
        return per_request

    used = await asyncio.gather(*(one(i) for i in range(200)))
    for limiter in replicas:
        await _drain(limiter)
    assert 1000 - 2 * per_request < sum(used) < 1000 + 2 * per_request  # one per replica
    assert ledger.used["key_1", "tpm", int(clock.now)] == sum(used)


async def test_a_spent_day_is_refused_until_the_day_ends():
    ledger, clock, caller = _setup(tokens_per_day=100)
    limiter = _limiter(ledger, clock)
    limiter.settle(await limiter.admit(caller, 100), 100)
    with pytest.raises(KeyRateLimited) as refused:
        await limiter.admit(caller, 10)
    assert "tokens per day (TPD)" in refused.value.message
    day_end = int(clock.now) - int(clock.now) % 86_400 + 86_400
    assert refused.value.retry_after == day_end - int(clock.now)
    assert dict(refused.value.headers)["x-ratelimit-limit-tokens"] == "100"


async def test_parallel_slots_are_held_while_requests_run_and_given_back_after():
    ledger, clock, caller = _setup(max_parallel_requests=2)
    first, second = _limiter(ledger, clock, "r1"), _limiter(ledger, clock, "r2")
    a = await first.admit(caller, 1)
    b = await second.admit(caller, 1)
    with pytest.raises(KeyRateLimited) as refused:
        await first.admit(caller, 1)
    assert "parallel requests" in refused.value.message and refused.value.retry_after == 1
    second.release(b)
    await _drain(second)
    assert ledger.held["key_1", "r2"] == 0  # back at auth: the other replica may use it
    c = await first.admit(caller, 1)
    first.release(a)
    first.release(c)
    first.release(c)  # once only
    await _drain(first)
    assert ledger.held["key_1", "r1"] == 0


async def test_the_end_of_a_minute_gives_its_tokens_back_to_the_day():
    ledger, clock, caller = _setup(tokens_per_minute=1000, tokens_per_day=10_000)
    limiter = _limiter(ledger, clock)
    limiter.settle(await limiter.admit(caller, 10), 10)
    held = limiter._keys["key_1"].tokens
    assert held == 90  # a slice of 100, 10 used
    clock.now += 60
    await limiter.upkeep()
    await _drain(limiter)
    assert ("return", "key_1", "r1", 0, 90, 0) in ledger.calls
    day = int(clock.now) - int(clock.now) % 86_400
    assert ledger.used["key_1", "tpd", day] == 10


async def test_keys_changed_and_close_give_back_what_is_held():
    ledger, clock, caller = _setup(requests_per_minute=100, tokens_per_minute=1000)
    limiter = _limiter(ledger, clock)
    limiter.settle(await limiter.admit(caller, 10), 10)
    limiter.keys_changed("", "acme")  # the tenant's defaults changed
    await _drain(limiter)
    assert ledger.calls[-1] == ("return", "key_1", "r1", 9, 90, 0)
    assert len(limiter) == 0
    await limiter.admit(caller, 10)
    await limiter.close()
    assert ledger.calls[-1] == ("return", "key_1", "r1", 9, 90, 0)
    minute = int(clock.now)
    assert ledger.used["key_1", "rpm", minute] == 2 and ledger.used["key_1", "tpm", minute] == 20


async def test_new_limits_in_a_verdict_start_over():
    ledger, clock, caller = _setup(requests_per_minute=100)
    limiter = _limiter(ledger, clock)
    await limiter.admit(caller, 1)
    tighter = Caller(key_id="key_1", tenant_id="acme", rate_limits=RateLimits(requests_per_minute=1))
    ledger.limits["key_1"] = tighter.rate_limits
    with pytest.raises(KeyRateLimited):  # the 9 requests held under the old limit went back
        await limiter.admit(tighter, 1)


def test_reset_durations_read_like_openais():
    assert [_duration(s) for s in (0.02, 1.5, 17.2, 59.6, 360, 3725)] == [
        "20ms", "1.5s", "17s", "1m0s", "6m0s", "1h2m5s"]


def test_the_estimate_covers_the_prompt_and_every_token_asked_for():
    assert estimate_tokens(400, 50, 2) == 100 + 100
    assert estimate_tokens(400, None, 1) == 100


async def test_the_next_lease_after_a_change_waits_for_the_give_back():
    ledger, clock, caller = _setup(requests_per_minute=100)
    limiter = _limiter(ledger, clock)
    await limiter.admit(caller, 1)  # holds 9 more
    tighter = Caller(key_id="key_1", tenant_id="acme", rate_limits=RateLimits(requests_per_minute=3))
    ledger.limits["key_1"] = tighter.rate_limits
    limiter.keys_changed("key_1")
    # Had the lease gone first, auth would have counted the 9 as used and called the minute spent.
    await limiter.admit(tighter, 1)
    await limiter.admit(tighter, 1)
    with pytest.raises(KeyRateLimited):
        await limiter.admit(tighter, 1)
    assert [c[0] for c in ledger.calls] == ["lease", "return", "lease", "lease"]  # then spent


async def test_a_request_ending_after_its_key_changed_settles_with_auth():
    ledger, clock, caller = _setup(tokens_per_minute=10_000)
    limiter = _limiter(ledger, clock)
    ticket = await limiter.admit(caller, 100)
    limiter.keys_changed("key_1")  # what the replica held goes back; this request still runs
    limiter.settle(ticket, 40)
    await _drain(limiter)
    assert ledger.calls[-1] == ("return", "key_1", "r1", 0, 60, 0)
    assert ledger.used["key_1", "tpm", int(clock.now)] == 40


async def test_a_verdict_older_than_auths_limits_does_not_restart_every_request():
    ledger, clock, caller = _setup(requests_per_minute=100)
    ledger.limits["key_1"] = RateLimits(requests_per_minute=200)  # changed; keys.changed missed
    limiter = _limiter(ledger, clock)
    for _ in range(10):
        await limiter.admit(caller, 1)
    assert ledger.count("lease") == 1 and ledger.count("return") == 0


async def test_a_lease_that_finds_auth_in_the_next_minute_leases_what_the_request_lacks():
    """The replica's clock is behind auth's: a lease for requests alone comes back in auth's new
    minute, which voids the tokens held for the old one. The request still gets its tokens."""
    ledger, clock, caller = _setup(requests_per_minute=20, tokens_per_minute=10_000)
    ledger.clock = auth_clock = Clock(clock.now)
    limiter = _limiter(ledger, clock)
    clock.now = auth_clock.now = clock.now + 50
    for _ in range(2):  # one slice of requests (2), tokens to spare (1,000)
        limiter.settle(await limiter.admit(caller, 100), 100)
    assert ledger.count("lease") == 1
    auth_clock.now += 15  # auth's minute has ended; this replica's has 5 s left
    ticket = await limiter.admit(caller, 100)
    assert ticket is not None and ticket.tokens == 100
    assert ledger.count("lease") == 3  # requests, then the tokens in auth's new minute


async def test_a_request_over_a_spent_window_waits_for_the_estimates_in_flight_to_settle():
    """A burst: every token of the window is reserved by estimates above the requests' real
    counts. The next request waits for one to settle and is served from what comes back,
    rather than refused with the limit under-used."""
    ledger, clock, caller = _setup(tokens_per_minute=100)
    limiter = _limiter(ledger, clock)
    first = await limiter.admit(caller, 50)
    second = await limiter.admit(caller, 50)
    assert first is not None and second is not None and ledger.count("lease") >= 1
    waiting = asyncio.ensure_future(limiter.admit(caller, 50))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the window is spent, but 100 tokens are only estimates in flight
    limiter.settle(first, 20)  # it used 20: 30 come back
    ticket = await asyncio.wait_for(waiting, 1)
    assert ticket is not None and ticket.tokens == 30
    limiter.settle(second, 50)
    limiter.settle(ticket, 30)
    with pytest.raises(KeyRateLimited):  # nothing in flight any more: refused at once
        await asyncio.wait_for(limiter.admit(caller, 50), 0.5)
