"""Leased rate-limit quota: router replicas take small slices of a key's per-minute requests and
tokens, per-day tokens and parallel-request slots, spend them locally, and give back what they
did not use; tokens spent beyond a slice are charged when the request ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from switchboard_common.errors import InvalidRequest, NotFound, Unauthenticated

from switchboard_auth.domain import Key, RateLimits, utc_now
from switchboard_auth.quota_store import REQUESTS_MINUTE, TOKENS_DAY, TOKENS_MINUTE, QuotaStore
from switchboard_auth.repository import Repository

MINUTE = 60
DAY = 86_400
MAX_ASK = 1_000_000  # per call and kind: far above any sensible slice
MAX_REPLICA_ID = 128


@dataclass(frozen=True)
class Windows:
    minute: int  # Unix seconds at the start of the UTC minute
    day: int  # Unix seconds at the start of the UTC day

    @classmethod
    def at(cls, now: datetime) -> Windows:
        ts = int(now.timestamp())
        return cls(minute=ts - ts % MINUTE, day=ts - ts % DAY)


def instant(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Remaining:
    """What is left for all replicas together; None where there is no limit."""

    requests: int | None = None
    tokens: int | None = None
    tokens_today: int | None = None


@dataclass(frozen=True)
class Lease:
    requests: int
    tokens: int
    parallel: int
    parallel_held: int
    windows: Windows
    parallel_expires_at: datetime
    limits: RateLimits
    remaining: Remaining


@dataclass(frozen=True)
class Returned:
    requests: int
    tokens: int
    parallel: int


class QuotaLedger:
    def __init__(self, repo: Repository, store: QuotaStore, *, parallel_lease_seconds: int = 60,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._store = store
        self._parallel_ttl = timedelta(seconds=parallel_lease_seconds)
        self._clock = clock

    async def lease(self, key_id: str, replica_id: str, requests: int, tokens: int,
                    parallel: int) -> Lease:
        _check_asks(requests=requests, tokens=tokens, parallel_requests=parallel)
        _check_replica(replica_id)
        now = self._clock()
        win = Windows.at(now)
        store = self._store
        # One connection for the key's limits and the grants: a lease is a pool checkout, not two.
        async with self._repo.engine.connect() as conn:
            limits = (await self._live_key(key_id, now, conn)).effective_limits
            await conn.begin()
            got_requests = requests if limits.requests_per_minute is None else await store.grant(
                conn, key_id, REQUESTS_MINUTE, win.minute, requests, limits.requests_per_minute)
            got_tokens = await self._grant_tokens(conn, key_id, win, tokens, limits)
            got_parallel, held = parallel, 0
            if limits.max_parallel_requests is not None:
                if not replica_id:
                    raise InvalidRequest("replica_id is required for a key with "
                                         "max_parallel_requests.", param="replica_id")
                got_parallel, held = await store.hold_parallel(
                    conn, key_id, replica_id, parallel, limits.max_parallel_requests, now,
                    now + self._parallel_ttl)
            remaining = await self._remaining(conn, key_id, win, limits)
            await conn.commit()
        return Lease(requests=got_requests, tokens=got_tokens, parallel=got_parallel,
                     parallel_held=held, windows=win, parallel_expires_at=now + self._parallel_ttl,
                     limits=limits, remaining=remaining)

    async def _grant_tokens(self, conn, key_id: str, win: Windows, wanted: int,
                            limits: RateLimits) -> int:
        granted = wanted
        if limits.tokens_per_minute is not None:
            granted = await self._store.grant(conn, key_id, TOKENS_MINUTE, win.minute, granted,
                                              limits.tokens_per_minute)
        if limits.tokens_per_day is not None and granted > 0:
            today = await self._store.grant(conn, key_id, TOKENS_DAY, win.day, granted,
                                            limits.tokens_per_day)
            if today < granted and limits.tokens_per_minute is not None:
                # The day had less left than the minute: the minute's surplus goes back at once.
                await self._store.give_back(conn, key_id, TOKENS_MINUTE, win.minute,
                                            granted - today)
            granted = today
        return granted

    async def give_back(self, key_id: str, replica_id: str, window_started_at: datetime | None,
                        requests: int, tokens: int, parallel: int) -> Returned:
        _check_asks(requests=requests, tokens=tokens, parallel_requests=parallel)
        _check_replica(replica_id)
        now = self._clock()
        current = Windows.at(now)
        leased = Windows.at(window_started_at) if window_started_at is not None else None
        if leased is not None and leased.minute > current.minute:
            raise InvalidRequest("window_started_at is in the future.", param="window_started_at")
        got_requests = got_tokens = got_parallel = 0
        async with self._repo.engine.begin() as conn:
            if leased is not None and leased.minute == current.minute:
                got_requests = await self._store.give_back(conn, key_id, REQUESTS_MINUTE,
                                                           leased.minute, requests)
                got_tokens = await self._store.give_back(conn, key_id, TOKENS_MINUTE,
                                                         leased.minute, tokens)
            if leased is not None and leased.day == current.day:
                # Tokens a minute did not use were never spent: the day gets them back.
                got_tokens = max(got_tokens, await self._store.give_back(
                    conn, key_id, TOKENS_DAY, leased.day, tokens))
            if parallel and replica_id:
                got_parallel = await self._store.release_parallel(conn, key_id, replica_id,
                                                                  parallel)
        return Returned(requests=got_requests, tokens=got_tokens, parallel=got_parallel)

    async def charge_tokens(self, key_id: str, tokens: int) -> Remaining:
        _check_asks(tokens=tokens)
        now = self._clock()
        key = await self._repo.get_key(key_id)
        if key is None:
            raise NotFound(f"No key '{key_id}'.", param="key_id", code="key_not_found")
        limits, win = key.effective_limits, Windows.at(now)
        async with self._repo.engine.begin() as conn:
            if tokens and limits.tokens_per_minute is not None:
                await self._store.charge(conn, key_id, TOKENS_MINUTE, win.minute, tokens)
            if tokens and limits.tokens_per_day is not None:
                await self._store.charge(conn, key_id, TOKENS_DAY, win.day, tokens)
            return await self._remaining(conn, key_id, win, limits)

    async def forget_old_windows(self) -> int:
        """Drop counters of days before yesterday and lapsed parallel slots: nothing reads them
        again."""
        now = self._clock()
        async with self._repo.engine.begin() as conn:
            return await self._store.forget_before(conn, Windows.at(now).day - DAY, now)

    async def _remaining(self, conn, key_id: str, win: Windows, limits: RateLimits) -> Remaining:
        async def left(kind: str, window: int, limit: int | None) -> int | None:
            if limit is None:
                return None
            return max(0, limit - await self._store.used(conn, key_id, kind, window))

        return Remaining(
            requests=await left(REQUESTS_MINUTE, win.minute, limits.requests_per_minute),
            tokens=await left(TOKENS_MINUTE, win.minute, limits.tokens_per_minute),
            tokens_today=await left(TOKENS_DAY, win.day, limits.tokens_per_day))

    async def _live_key(self, key_id: str, now: datetime, conn) -> Key:
        key = await self._repo.get_key(key_id, conn) if key_id else None
        if key is None:
            raise NotFound(f"No key '{key_id}'.", param="key_id", code="key_not_found")
        if key.revoked_at is not None:
            raise Unauthenticated("This API key has been revoked.", code="key_revoked")
        if key.is_expired(now):
            raise Unauthenticated("This API key has expired.", code="key_expired")
        return key


def _check_replica(replica_id: str) -> None:
    if len(replica_id) > MAX_REPLICA_ID:
        raise InvalidRequest(f"replica_id is longer than {MAX_REPLICA_ID} characters.",
                             param="replica_id")


def _check_asks(**asks: int) -> None:
    for name, value in asks.items():
        if not 0 <= value <= MAX_ASK:
            raise InvalidRequest(f"{name} must be between 0 and {MAX_ASK}.", param=name)
