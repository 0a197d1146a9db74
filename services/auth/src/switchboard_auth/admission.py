"""Admission: who a presented key belongs to, or why it is refused; and who calls an admin RPC."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from switchboard_common.errors import MissingApiKey, PermissionDenied, Unauthenticated

from switchboard_auth.access import Principal, check_user_id
from switchboard_auth.domain import Key, Verdict, utc_now
from switchboard_auth.hashing import KeyHasher
from switchboard_common.models import model_allowed
from switchboard_auth.repository import Repository

INVALID_KEY = "Incorrect API key provided."


class Admission:
    def __init__(self, repo: Repository, hasher: KeyHasher, cache_ttl_seconds: int,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._hasher = hasher
        self._ttl = cache_ttl_seconds
        self._clock = clock

    async def authorize(self, secret: str, model: str) -> Verdict:
        key, ends = await self._identify(secret)
        if not model_allowed(key.allowed_models, model):
            raise PermissionDenied(f"This key may not use model '{model[:200]}'.", param="model",
                                   code="model_not_allowed")
        return Verdict(key=key, expires_at=ends, cache_ttl_seconds=self._cache_ttl(ends))

    async def principal(self, secret: str, acting_user: str = "") -> Principal:
        """The caller of an admin RPC (any valid key; each RPC checks the role it needs)."""
        key, _ends = await self._identify(secret)
        return Principal(key=key, acting_user=check_user_id(acting_user, "X-User-ID"),
                         secret=secret)

    async def require_admin(self, secret: str) -> Key:
        """The caller's key when it is a valid admin key; 401 or 403 otherwise."""
        principal = await self.principal(secret)
        principal.require_admin()
        return principal.key

    async def _identify(self, secret: str) -> tuple[Key, datetime | None]:
        """The key and when this secret stops working (the key's expiry or a rotated-out
        secret's grace end, whichever is first)."""
        if not secret:
            raise MissingApiKey()
        found = await self._repo.find_by_secret_hash(self._hasher.hash(secret))
        # The lookup is by the hash's primary key; compare again in constant time all the same.
        if found is None or not self._hasher.matches(secret, found[1]):
            raise Unauthenticated(INVALID_KEY, code="invalid_api_key")
        key, _hash, secret_ends = found
        now = self._clock()
        if key.revoked_at is not None:
            raise Unauthenticated("This API key has been revoked.", code="key_revoked")
        if key.is_expired(now):
            raise Unauthenticated("This API key has expired.", code="key_expired")
        if secret_ends is not None and secret_ends <= now:
            raise Unauthenticated("This API key was rotated and its grace period has ended.",
                                  code="key_expired")
        ends = min((t for t in (key.expires_at, secret_ends) if t is not None), default=None)
        return key, ends

    def _cache_ttl(self, ends: datetime | None) -> int:
        # A router must not serve a cached "yes" past the secret's end.
        if ends is None:
            return self._ttl
        left = (ends - self._clock()).total_seconds()
        return max(0, min(self._ttl, math.floor(left)))
