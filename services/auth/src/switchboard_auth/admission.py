"""Admission: who a presented key belongs to, or why it is refused; and the admin check."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from switchboard_common.errors import MissingApiKey, PermissionDenied, Unauthenticated

from switchboard_auth.domain import Key, Verdict, model_allowed, utc_now
from switchboard_auth.hashing import KeyHasher
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
        key = await self._identify(secret)
        if not model_allowed(key.allowed_models, model):
            raise PermissionDenied(f"This key may not use model '{model}'.", param="model",
                                   code="model_not_allowed")
        return Verdict(key=key, cache_ttl_seconds=self._cache_ttl(key))

    async def require_admin(self, secret: str) -> Key:
        """The caller's key when it is a valid admin key; 401 or 403 otherwise."""
        key = await self._identify(secret)
        if not key.is_admin:
            raise PermissionDenied("admin key required", code="admin_key_required")
        return key

    async def _identify(self, secret: str) -> Key:
        if not secret:
            raise MissingApiKey()
        key_hash = self._hasher.hash(secret)
        found = await self._repo.find_by_hash(key_hash)
        # The lookup is by an index on the hash; compare again in constant time all the same.
        if found is None or not self._hasher.matches(secret, found[1]):
            raise Unauthenticated(INVALID_KEY, code="invalid_api_key")
        key = found[0]
        if key.revoked_at is not None:
            raise Unauthenticated("This API key has been revoked.", code="key_revoked")
        if key.is_expired(self._clock()):
            raise Unauthenticated("This API key has expired.", code="key_expired")
        return key

    def _cache_ttl(self, key: Key) -> int:
        # A router must not serve a cached "yes" past the key's expiry.
        if key.expires_at is None:
            return self._ttl
        left = (key.expires_at - self._clock()).total_seconds()
        return max(0, min(self._ttl, math.floor(left)))
