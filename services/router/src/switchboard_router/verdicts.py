"""The cache of auth's verdicts, per (hash of key, model): what keeps auth off the hot path.

Entries live for the verdict's TTL; `drop_key` removes every entry of a key at once when auth
publishes keys.changed. Refusals (401/403) are cached briefly too, to shed brute force. Keys are
held only as a BLAKE2b digest. No I/O here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from switchboard_common.errors import ApiError

from switchboard_router.domain import Caller

CacheKey = tuple[bytes, str]


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A cached 401/403: the error is rebuilt per request (a raised instance keeps its traceback)."""

    error: type[ApiError]
    message: str
    code: str | None

    def raise_(self) -> None:
        raise self.error(self.message, code=self.code)


@dataclass(slots=True)
class _Entry:
    value: Caller | Refusal
    expires: float
    key_id: str


class VerdictCache:
    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: dict[CacheKey, _Entry] = {}
        self._by_key_id: dict[str, set[CacheKey]] = {}
        # Bumped by every drop: a verdict fetched before a drop must not be stored after it.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float) -> Caller | Refusal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._remove(key)
            return None
        return entry.value

    def put(self, key: CacheKey, value: Caller | Refusal, expires: float, generation: int) -> None:
        if generation != self.generation:
            return
        if key in self._entries:
            self._remove(key)
        elif len(self._entries) >= self._max:
            self._remove(next(iter(self._entries)))  # the oldest insert
        key_id = value.key_id if isinstance(value, Caller) else ""
        self._entries[key] = _Entry(value, expires, key_id)
        if key_id:
            self._by_key_id.setdefault(key_id, set()).add(key)

    def drop_key(self, key_id: str) -> int:
        """Forget every verdict of this key (revoked, updated, deleted); returns how many."""
        self.generation += 1
        keys = self._by_key_id.pop(key_id, ())
        for key in keys:
            self._entries.pop(key, None)
        return len(keys)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_key_id.clear()

    def _remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key)
        if entry.key_id:
            keys = self._by_key_id.get(entry.key_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_key_id[entry.key_id]
