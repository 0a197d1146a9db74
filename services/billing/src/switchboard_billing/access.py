"""Who may read which usage: the caller's key, checked by auth (answers cached briefly)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from switchboard_common.errors import MissingApiKey, PermissionDenied

from switchboard_billing.domain import Caller

Authorize = Callable[[str], Awaitable[tuple[Caller, int]]]

_MAX_CACHED = 10_000


class Access:
    def __init__(self, authorize: Authorize, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._authorize = authorize
        self._cache_seconds = cache_seconds
        self._clock = clock
        # sha256(key) -> (caller, expires at): the key itself is not kept as a dict key.
        self._cache: dict[bytes, tuple[Caller, float]] = {}

    async def caller(self, secret: str) -> Caller:
        if not secret:
            raise MissingApiKey()
        digest = hashlib.sha256(secret.encode()).digest()
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        caller, auth_ttl = await self._authorize(secret)  # refusals raise and are not cached
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()  # a crude bound; a busy billing re-asks auth once per key
        self._cache[digest] = (caller, now + min(self._cache_seconds, auth_ttl))
        return caller

    @staticmethod
    def key_scope(caller: Caller, requested_key_id: str) -> str:
        """The key_id filter a caller may use: admins any (empty: all), others only their own."""
        if caller.is_admin:
            return requested_key_id
        if requested_key_id and requested_key_id != caller.key_id:
            raise PermissionDenied("This key may only read its own usage; use an admin key to "
                                   "read another key's.", param="key_id", code="permission_denied")
        return caller.key_id
