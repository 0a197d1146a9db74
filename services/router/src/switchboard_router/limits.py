"""A key's rate limits on the hot path, exact across router replicas without a call to auth per
request: this replica leases small slices of each limit from auth (LeaseQuota, one atomic
statement in auth's database), spends only what it holds, charges a request's real tokens when
it ends (ChargeTokens for what its reservation did not cover) and gives back what it did not use
(ReturnQuota) when the minute ends, when a parallel request ends, and when it stops.

Per request: one request slot of the minute; tokens reserved up front (an estimate of the
prompt, from the body's size, plus max_tokens times n) and settled with the real count, so a TPM
limit holds within one request's tokens per replica (the last request a replica admits in a
spent window may use more than it had left); one parallel-request slot while it runs.
Auth's windows are UTC minutes and days; a window auth reports spent is refused here, without
asking again, until it ends (a replica that stops mid-minute gives its slices back, which the
others then do not see before the next minute: the limit can under-admit, never over-admit).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import orjson
import structlog
from switchboard_common.auth_client import Grant
from switchboard_common.caller import Caller, RateLimits
from switchboard_common.errors import ApiError

from switchboard_router.domain import ParsedRequest
from switchboard_router.key_quota import KeyQuota, KeyRateLimited, Ticket

_log = structlog.get_logger("limits")

SLICE_FRACTION = 10  # a slice is a tenth of the limit ...
MAX_REQUEST_SLICE = 1_000  # ... at most this many requests
MAX_TOKEN_SLICE = 1_000_000  # ... or tokens (a lease carries at most auth's MAX_ASK)
IDLE_SECONDS = 120.0  # a key's state with nothing held is forgotten after this long unused
RENEW_BEFORE_SECONDS = 20.0  # renew parallel slots this long before auth lets them lapse
PARALLEL_LEASE_SECONDS = 60.0  # auth's SWITCHBOARD_AUTH_PARALLEL_LEASE_SECONDS default
SETTLE_WAIT_SECONDS = 1.0  # how long a request over a spent window waits for requests in flight


class QuotaAuth(Protocol):
    async def lease_quota(self, key_id: str, replica_id: str, *, requests: int = 0,
                          tokens: int = 0, parallel: int = 0) -> Grant: ...

    async def return_quota(self, key_id: str, replica_id: str, window_start: float, *,
                           requests: int = 0, tokens: int = 0, parallel: int = 0) -> None: ...

    async def charge_tokens(self, key_id: str, replica_id: str, tokens: int) -> None: ...


class Limiter:
    def __init__(self, auth: QuotaAuth, replica_id: str, *,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._auth = auth
        self._replica = replica_id
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, KeyQuota] = {}
        self._tasks: set[asyncio.Task] = set()
        # Quota being given back after a change, by key: the next lease waits for it, or auth
        # would still count it as held (and could call the window spent).
        self._returning: dict[str, asyncio.Task] = {}
        self._ticker: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._keys)

    # --- the hot path -------------------------------------------------------------------------

    async def admit_request(self, caller: Caller, request: ParsedRequest,
                            body: bytes | dict[str, Any]) -> Ticket | None:
        """admit() with the request's token estimate (computed only for a key with a token
        limit)."""
        limits = caller.rate_limits
        if not limits:
            return None
        estimate = 1
        if _limits_tokens(limits):
            size = len(body) if isinstance(body, bytes | bytearray) else len(orjson.dumps(body))
            estimate = estimate_tokens(size, request.max_tokens, request.n)
        return await self.admit(caller, estimate)

    async def admit(self, caller: Caller, estimate: int) -> Ticket | None:
        """The request's share of the key's limits (None for a key without limits); raises
        KeyRateLimited when a limit is spent, ServiceUnavailable when auth cannot lease."""
        limits = caller.rate_limits
        if not limits:
            return None
        q = self._quota(caller)
        q.used = self._monotonic()
        estimate = max(1, estimate)
        if not self._fits(q, self._clock(), estimate):
            async with q.lock:  # one lease at a time per key; the others then find it filled
                now = self._clock()
                if not self._fits(q, now, estimate):
                    await self._lease(q, now, estimate)
                    await self._settling(q, estimate)
                    self._refuse_unless_fits(q, self._clock())
        now = self._clock()
        limits = q.limits
        if limits.requests_per_minute is not None:
            q.requests -= 1
        tokens = 0
        if _limits_tokens(limits):
            tokens = min(estimate, q.tokens)
            q.tokens -= tokens
            q.reserved_tokens += tokens
        parallel = limits.max_parallel_requests is not None
        if parallel:
            q.parallel_busy += 1
        return Ticket(q, q.window_start, tokens, parallel, q.headers(now))

    def release(self, ticket: Ticket | None) -> None:
        """The request ended: its parallel slot goes back to auth at once, so another replica
        can use it."""
        if ticket is None or ticket.released:
            return
        ticket.released = True
        q = ticket.quota
        if ticket.parallel:
            q.parallel_busy -= 1
            idle = q.parallel_held - q.parallel_busy
            if idle > 0:
                q.parallel_held -= idle
                self._spawn(self._auth.return_quota(q.key_id, self._replica, q.window_start,
                                                    parallel=idle))

    def settle(self, ticket: Ticket | None, used_tokens: int) -> None:
        """The request's real token count: what its reservation left goes back to this replica's
        slice; what it used beyond is taken from the slice, and the rest charged to auth."""
        if ticket is None or ticket.settled:
            return
        ticket.settled = True
        q = ticket.quota
        if not _limits_tokens(q.limits):
            return
        # A key's state dropped meanwhile (keys.changed) holds nothing any more: auth settles.
        same_window = (ticket.window_start == q.window_start and self._clock() < q.window_end
                       and self._keys.get(q.key_id) is q)
        if same_window:
            q.reserved_tokens -= ticket.tokens
            q.settled.set()
        left = ticket.tokens - used_tokens
        if left > 0:
            if same_window:
                q.tokens += left
            else:  # to auth: to that minute while it lasts, else to the day
                self._spawn(self._auth.return_quota(q.key_id, self._replica, ticket.window_start,
                                                    tokens=left))
            return
        over = -left
        if same_window:
            taken = min(over, q.tokens)
            q.tokens -= taken
            over -= taken
        if over > 0:
            self._spawn(self._auth.charge_tokens(q.key_id, self._replica, over))

    # --- keys.changed, upkeep, shutdown -------------------------------------------------------

    def keys_changed(self, key_id: str, tenant_id: str = "") -> None:
        """A key's limits may have changed: give back what is held for it (or for every key of
        the tenant), so the very next request leases under the new limits."""
        doomed = [q for q in self._keys.values()
                  if (q.key_id == key_id if key_id else q.tenant_id == tenant_id)]
        for q in doomed:
            del self._keys[q.key_id]
            self._give_back(q, parallel=q.parallel_held - q.parallel_busy, before_next_lease=True)

    def start(self, every_seconds: float = 5.0) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._upkeep_forever(every_seconds))

    async def upkeep(self) -> None:
        """Give back the tokens of minutes that ended, renew held parallel slots before auth lets
        them lapse, and forget keys idle with nothing held."""
        now, mono = self._clock(), self._monotonic()
        for q in list(self._keys.values()):
            self._roll(q, now)
            if q.parallel_held and mono - q.parallel_renewed > PARALLEL_LEASE_SECONDS - RENEW_BEFORE_SECONDS:
                q.parallel_renewed = mono
                self._spawn(self._lease_quietly(q))
            if (not q.parallel_held and not q.requests and not q.tokens
                    and mono - q.used > IDLE_SECONDS and not q.lock.locked()):
                del self._keys[q.key_id]

    async def close(self, timeout: float = 2.0) -> None:
        """Give back everything held (requests and tokens of this minute, parallel slots)."""
        if self._ticker is not None:
            self._ticker.cancel()
        for q in list(self._keys.values()):
            self._give_back(q, parallel=q.parallel_held)
        self._keys.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # --- inside -------------------------------------------------------------------------------

    def _quota(self, caller: Caller) -> KeyQuota:
        q = self._keys.get(caller.key_id)
        if q is None:
            q = self._keys[caller.key_id] = KeyQuota(caller.key_id, caller.tenant_id,
                                                      caller.rate_limits, caller.rate_limits)
        elif q.seen != caller.rate_limits and not q.lock.locked():
            # A verdict with other limits: start over under them (auth checks them anyway).
            self._give_back(q, parallel=q.parallel_held - q.parallel_busy, before_next_lease=True)
            q.limits = q.seen = caller.rate_limits
        return q

    def _fits(self, q: KeyQuota, now: float, estimate: int) -> bool:
        """What one more request needs is held already (the window still lasts). Tokens: its
        whole estimate, or what is left once auth said the window is spent (the last request
        of a window may go over by its own tokens)."""
        if q.window_end <= now:
            self._roll(q, now)
        limits = q.limits
        return ((limits.requests_per_minute is None or q.requests > 0)
                and (not _limits_tokens(limits) or q.tokens >= estimate
                     or (q.tokens > 0 and q.tokens_spent_until > now))
                and (limits.max_parallel_requests is None or q.parallel_busy < q.parallel_held))

    async def _lease(self, q: KeyQuota, now: float, estimate: int, *,
                     again: bool = True) -> None:
        limits = q.limits
        want_requests = want_tokens = want_parallel = 0
        if limits.requests_per_minute is not None and q.requests <= 0 and q.requests_spent_until <= now:
            want_requests = _slice(limits.requests_per_minute, MAX_REQUEST_SLICE)
        if _limits_tokens(limits) and q.tokens < estimate and q.tokens_spent_until <= now:
            token_limit = min(x for x in (limits.tokens_per_minute, limits.tokens_per_day)
                              if x is not None)
            want_tokens = min(max(estimate - q.tokens, _slice(token_limit, MAX_TOKEN_SLICE)),
                              MAX_TOKEN_SLICE)
        if limits.max_parallel_requests is not None and q.parallel_busy >= q.parallel_held:
            want_parallel = 1
        if not (want_requests or want_tokens or want_parallel):
            return
        returning = self._returning.get(q.key_id)
        if returning is not None:
            await asyncio.wait({returning})
        grant = await self._auth.lease_quota(q.key_id, self._replica, requests=want_requests,
                                             tokens=want_tokens, parallel=want_parallel)
        later_minute = grant.window_start != q.window_start and q.window_end > 0
        self._apply(q, grant, want_requests, want_tokens)
        if later_minute and again and not self._fits(q, self._clock(), estimate):
            # Auth is already in the next minute (this replica's clock is behind): what was held
            # for the last one was voided, so lease what this request lacks in the new one.
            await self._lease(q, self._clock(), estimate, again=False)

    def _apply(self, q: KeyQuota, grant: Grant, asked_requests: int, asked_tokens: int) -> None:
        if grant.window_start != q.window_start:
            self._roll(q, math.inf)  # auth is in another minute: what was held is of the last
            q.window_start, q.window_end = grant.window_start, grant.window_end
        q.day_end = grant.day_end
        q.limits = grant.limits  # auth's word, should a keys.changed have been missed
        q.requests += grant.requests
        q.tokens += grant.tokens
        q.parallel_held = grant.parallel_held if q.limits.max_parallel_requests is not None else 0
        q.parallel_renewed = self._monotonic()
        q.requests_left, q.tokens_left = grant.requests_remaining, grant.tokens_remaining
        q.tokens_left_today = grant.tokens_remaining_today
        if asked_requests and grant.requests_remaining == 0:
            q.requests_spent_until = grant.window_end
        if asked_tokens:
            if grant.tokens_remaining_today == 0:
                q.tokens_spent_until = grant.day_end
            elif grant.tokens_remaining == 0:
                q.tokens_spent_until = grant.window_end

    async def _settling(self, q: KeyQuota, estimate: int) -> None:
        """Under the key's lock, the window's tokens spent: while this replica's requests in
        flight still hold tokens, wait (at most SETTLE_WAIT_SECONDS) for them to settle, since
        what their estimates held beyond their real counts comes back. Refusing at once would
        under-admit a burst by that margin."""
        if not _limits_tokens(q.limits):
            return
        deadline = self._monotonic() + SETTLE_WAIT_SECONDS
        while q.reserved_tokens > 0 and not self._fits(q, self._clock(), estimate):
            left = deadline - self._monotonic()
            if left <= 0:
                return
            q.settled.clear()
            try:
                await asyncio.wait_for(q.settled.wait(), left)
            except TimeoutError:
                return

    def _refuse_unless_fits(self, q: KeyQuota, now: float) -> None:
        limits = q.limits
        if limits.requests_per_minute is not None and q.requests <= 0:
            self._refuse(q, now, "requests", "requests per minute (RPM)",
                         limits.requests_per_minute, q.window_end)
        if _limits_tokens(limits) and q.tokens <= 0:
            day = limits.tokens_per_minute is None or q.tokens_spent_until >= q.day_end > 0
            self._refuse(q, now, "tokens", "tokens per day (TPD)" if day else
                         "tokens per minute (TPM)",
                         limits.tokens_per_day if day else limits.tokens_per_minute,
                         q.day_end if day else q.window_end)
        if limits.max_parallel_requests is not None and q.parallel_busy >= q.parallel_held:
            self._refuse(q, now, "requests", "parallel requests", limits.max_parallel_requests,
                         now + 1)

    def _refuse(self, q: KeyQuota, now: float, kind: str, what: str, limit: int | None,
                until: float) -> None:
        wait = max(1, math.ceil(until - now))
        raise KeyRateLimited(f"Rate limit reached for {what} on this key: limit {limit}. "
                             f"Please try again in {wait}s.", kind=kind, retry_after=wait,
                             headers=q.headers(now))

    def _roll(self, q: KeyQuota, now: float) -> None:
        """The minute ended: its requests are void; its tokens go back to the day."""
        if not q.window_end or now < q.window_end:
            return
        if q.tokens > 0:
            self._spawn(self._auth.return_quota(q.key_id, self._replica, q.window_start,
                                                tokens=q.tokens))
        q.requests = q.tokens = 0
        q.reserved_tokens = 0  # the requests still in flight settle with auth, not here
        q.window_start = q.window_end = 0.0
        q.requests_left = q.tokens_left = None

    def _give_back(self, q: KeyQuota, *, parallel: int, before_next_lease: bool = False) -> None:
        requests, tokens = max(0, q.requests), max(0, q.tokens)
        parallel = max(0, parallel)
        q.requests = q.tokens = 0
        q.parallel_held -= parallel
        if q.window_end <= self._clock():
            requests = 0  # a minute that ended takes no requests back
        if requests or tokens or parallel:
            task = self._spawn(self._auth.return_quota(q.key_id, self._replica, q.window_start,
                                                       requests=requests, tokens=tokens,
                                                       parallel=parallel))
            if before_next_lease:
                self._returning[q.key_id] = task
                task.add_done_callback(functools.partial(self._returned, q.key_id))

    async def _lease_quietly(self, q: KeyQuota) -> None:
        grant = await self._auth.lease_quota(q.key_id, self._replica)  # renews held slots
        # Auth's count wins where it is lower: slots it let lapse are gone.
        q.parallel_held = min(q.parallel_held, grant.parallel_held)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _returned(self, key_id: str, task: asyncio.Task) -> None:
        if self._returning.get(key_id) is task:
            del self._returning[key_id]

    @staticmethod
    async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except ApiError as exc:  # auth away: parallel slots lapse, tokens stay counted (safe side)
            _log.warning("quota call to auth failed", error=exc.code)

    async def _upkeep_forever(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.upkeep()
            except Exception:  # noqa: BLE001 - the ticker must outlive any one failure
                _log.exception("quota upkeep failed")


def _limits_tokens(limits: RateLimits) -> bool:
    return limits.tokens_per_minute is not None or limits.tokens_per_day is not None


def _slice(limit: int, cap: int) -> int:
    return max(1, min(limit // SLICE_FRACTION, cap))


def estimate_tokens(body_bytes: int, max_tokens: int | None, n: int) -> int:
    """What a request may use, reserved before it runs: about four bytes of JSON per prompt
    token (an overestimate: the JSON's own syntax counts too) and everything it may write."""
    return body_bytes // 4 + (max_tokens or 0) * max(1, n)
