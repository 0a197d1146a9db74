"""Admission from cached verdicts: the key from a call, auth's verdict from the cache, auth
asked only on a miss (once per key, however many calls wait), for router, billing, guardrails
and memory.

One verdict per key, not per key and model: the cached caller carries its allowed-model
patterns and every request checks its model against them here (403 `model_not_allowed`), so a
key that uses many models, or a passthrough route (`openai/*`), still holds one entry. Verdicts
live for auth's TTL, never past `max_ttl` (the verdict age bound: a router that misses
keys.changed while NATS is away still asks again by then), and the secret's own expiry is checked
against the wall clock on every request. Entries are evicted least recently used first.

Refusals (401) are kept `refusal_ttl` seconds in a small cache of their own, so a flood of bogus
keys can neither reach auth at full rate nor evict a valid key's verdict. A refusal names no key
(the key is unknown, or its id is not worth trusting), so every keys.changed event forgets all
of them: that cache is small and cheap to refill. Keys are held only as a BLAKE2b digest. An
outage of auth is never cached: it is a 503 for keys not cached yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

import structlog

from switchboard_common.auth_client import Verdict
from switchboard_common.caller import Caller
from switchboard_common.errors import ApiError, MissingApiKey, PermissionDenied, Unauthenticated
from switchboard_common.models import model_allowed

_log = structlog.get_logger("admission")
_REFUSALS = (Unauthenticated, PermissionDenied)

Digest = bytes
Authorize = Callable[[str, str], Awaitable[Verdict]]
REFUSAL_CACHE_SIZE = 10_000


def key_digest(key: str) -> Digest:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def model_refused(model: str) -> PermissionDenied:
    return PermissionDenied(f"This key may not use model '{model[:200]}'.", param="model",
                            code="model_not_allowed")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A cached 401/403: the error is rebuilt per request (a raised instance keeps its traceback)."""

    error: type[ApiError]
    message: str
    code: str | None

    def raise_(self) -> NoReturn:
        raise self.error(self.message, code=self.code)


@dataclass(slots=True)
class _Entry:
    caller: Caller
    fresh_until: float  # monotonic: the verdict age bound
    expires_at: float | None  # wall clock (Unix seconds): the secret stops working


class VerdictCache:
    """At most `max_entries` admitted callers by key digest, least recently used evicted first,
    indexed by key id and tenant so keys.changed finds every entry it concerns. No I/O here."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Digest, _Entry] = OrderedDict()
        # A key has two digests while a rotated-out secret is in its grace period.
        self._by_key_id: dict[str, set[Digest]] = {}
        self._by_tenant: dict[str, set[Digest]] = {}
        # Bumped by every drop: a verdict fetched before a drop must not be stored after it.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: Digest, now: float, wall_now: float) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.fresh_until <= now or (entry.expires_at is not None
                                        and entry.expires_at <= wall_now):
            self._remove(digest)
            return None
        self._entries.move_to_end(digest)
        return entry.caller

    def put(self, digest: Digest, caller: Caller, fresh_until: float, expires_at: float | None,
            generation: int) -> None:
        if generation != self.generation:
            return
        if digest in self._entries:
            self._remove(digest)
        elif len(self._entries) >= self._max:
            self._remove(next(iter(self._entries)))  # the least recently used
        self._entries[digest] = _Entry(caller, fresh_until, expires_at)
        self._by_key_id.setdefault(caller.key_id, set()).add(digest)
        self._by_tenant.setdefault(caller.tenant_id, set()).add(digest)

    def drop_key(self, key_id: str) -> int:
        """Forget every verdict of this key (revoked, updated, rotated); returns how many."""
        self.generation += 1
        return self._drop(self._by_key_id.get(key_id, ()))

    def drop_tenant(self, tenant_id: str) -> int:
        """Forget every verdict of the tenant's keys (its defaults changed, or it is gone)."""
        self.generation += 1
        return self._drop(self._by_tenant.get(tenant_id, ()))

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_key_id.clear()
        self._by_tenant.clear()

    def _drop(self, digests) -> int:
        digests = list(digests)
        for digest in digests:
            self._remove(digest)
        return len(digests)

    def _remove(self, digest: Digest) -> None:
        entry = self._entries.pop(digest)
        for index, name in ((self._by_key_id, entry.caller.key_id),
                            (self._by_tenant, entry.caller.tenant_id)):
            digests = index.get(name)
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del index[name]


class RefusalCache:
    """Recent 401s by key digest, least recently used evicted first; forgotten all at once."""

    def __init__(self, max_entries: int = REFUSAL_CACHE_SIZE) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Digest, tuple[Refusal, float]] = OrderedDict()
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: Digest, now: float) -> Refusal | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        if found[1] <= now:
            del self._entries[digest]
            return None
        return found[0]

    def put(self, digest: Digest, refusal: Refusal, until: float, generation: int) -> None:
        if generation != self.generation:
            return
        self._entries.pop(digest, None)
        if len(self._entries) >= self._max:
            self._entries.popitem(last=False)
        self._entries[digest] = (refusal, until)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class Admission:
    def __init__(self, authorize: Authorize, cache: VerdictCache, *, default_ttl: float,
                 refusal_ttl: float, max_ttl: float = math.inf,
                 refusals: RefusalCache | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._authorize = authorize
        self._cache = cache
        self._refusals = refusals if refusals is not None else RefusalCache()
        self._default_ttl = default_ttl
        self._refusal_ttl = refusal_ttl  # 0: refusals are not kept
        self._max_ttl = max_ttl
        self._clock = clock
        self._wall_clock = wall_clock
        self._inflight: dict[Digest, asyncio.Future[Caller | Refusal]] = {}

    async def admit(self, key: str | None, model: str = "") -> Caller:
        """The caller `key` belongs to, allowed `model` ("" for the key alone); raises auth's
        refusal, MissingApiKey without a key, ServiceUnavailable when auth is down."""
        if not key:
            raise MissingApiKey()
        digest = key_digest(key)
        caller = self._cache.get(digest, self._clock(), self._wall_clock())
        if caller is None:
            refusal = self._refusals.get(digest, self._clock())
            if refusal is not None:
                refusal.raise_()
            pending = self._inflight.get(digest)
            if pending is None:  # one call to auth per key, however many are waiting
                pending = asyncio.ensure_future(self._ask(key, digest))
                self._inflight[digest] = pending
                pending.add_done_callback(lambda f: self._settled(digest, f))
            verdict = await asyncio.shield(pending)
            if isinstance(verdict, Refusal):
                verdict.raise_()
            caller = verdict
        if model and caller.allowed_models and not model_allowed(caller.allowed_models, model):
            raise model_refused(model)
        return caller

    async def _ask(self, key: str, digest: Digest) -> Caller | Refusal:
        generation, refusals_generation = self._cache.generation, self._refusals.generation
        try:
            answer = await self._authorize(key, "")
        except _REFUSALS as exc:
            refusal = Refusal(type(exc), exc.message, exc.code)
            if self._refusal_ttl > 0:
                self._refusals.put(digest, refusal, self._clock() + self._refusal_ttl,
                                   refusals_generation)
            return refusal
        ttl = min(float(answer.ttl_seconds) or self._default_ttl, self._max_ttl)
        if answer.expires_at is not None:
            ttl = min(ttl, answer.expires_at - self._wall_clock())
        if ttl > 0:
            self._cache.put(digest, answer.caller, self._clock() + ttl, answer.expires_at,
                            generation)
        return answer.caller

    def _settled(self, digest: Digest, future: asyncio.Future[Caller | Refusal]) -> None:
        self._inflight.pop(digest, None)
        if not future.cancelled():
            future.exception()  # retrieved here too, in case every waiter went away

    def keys_changed(self, key_id: str, tenant_id: str = "") -> None:
        """A keys.changed event: one key (`key_id`), or every key of a tenant (`key_id` "").
        Cached refusals go too: one of them may be that key's (expired, now extended)."""
        self._refusals.clear()
        if key_id:
            dropped = self._cache.drop_key(key_id)
        elif tenant_id:
            dropped = self._cache.drop_tenant(tenant_id)
        else:
            return
        _log.info("verdicts dropped", key_id=key_id, tenant_id=tenant_id, entries=dropped)

    def drop_key(self, key_id: str) -> None:
        self.keys_changed(key_id)

    def clear(self) -> None:
        self._cache.clear()
        self._refusals.clear()
