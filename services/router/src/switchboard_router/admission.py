"""Who is calling: the key from the call, auth's verdict from the cache, auth only on a miss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from switchboard_common.errors import MissingApiKey, PermissionDenied, Unauthenticated

from switchboard_router.auth_client import AuthClient, Verdict
from switchboard_router.domain import Caller
from switchboard_router.verdicts import CacheKey, Refusal, VerdictCache, key_digest

_log = structlog.get_logger("admission")
_REFUSALS = (Unauthenticated, PermissionDenied)


class Admission:
    def __init__(self, auth: AuthClient, cache: VerdictCache, *, default_ttl: float,
                 refusal_ttl: float, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._cache = cache
        self._default_ttl = default_ttl
        self._refusal_ttl = refusal_ttl
        self._clock = clock
        self._wall_clock = wall_clock
        self._inflight: dict[CacheKey, asyncio.Future[Caller | Refusal]] = {}

    async def admit(self, key: str | None, model: str) -> Caller:
        if not key:
            raise MissingApiKey()
        cache_key = (key_digest(key), model)
        verdict = self._cache.get(cache_key, self._clock())
        if verdict is None:
            pending = self._inflight.get(cache_key)
            if pending is None:  # one call to auth per key and model, however many are waiting
                pending = asyncio.ensure_future(self._ask(key, model, cache_key))
                self._inflight[cache_key] = pending
                pending.add_done_callback(lambda f: self._settled(cache_key, f))
            verdict = await asyncio.shield(pending)
        if isinstance(verdict, Refusal):
            verdict.raise_()
        return verdict

    async def _ask(self, key: str, model: str, cache_key: CacheKey) -> Caller | Refusal:
        generation = self._cache.generation
        try:
            answer: Verdict = await self._auth.authorize(key, model)
        except _REFUSALS as exc:
            refusal = Refusal(type(exc), exc.message, exc.code)
            self._cache.put(cache_key, refusal, self._clock() + self._refusal_ttl, generation)
            return refusal
        ttl = float(answer.ttl_seconds) or self._default_ttl
        if answer.expires_at is not None:
            ttl = min(ttl, answer.expires_at - self._wall_clock())
        if ttl > 0:
            self._cache.put(cache_key, answer.caller, self._clock() + ttl, generation)
        return answer.caller

    def _settled(self, cache_key: CacheKey, future: asyncio.Future) -> None:
        self._inflight.pop(cache_key, None)
        if not future.cancelled():
            future.exception()  # retrieved here too, in case every waiter went away

    def drop_key(self, key_id: str) -> None:
        dropped = self._cache.drop_key(key_id)
        _log.info("verdicts dropped", key_id=key_id, entries=dropped)

    def clear(self) -> None:
        self._cache.clear()
