"""Where entries live: this process's memory (cachetools' TTLCache: a TTL and a bound on
entries, least recently used out first) or Redis (shared by every router replica; SET with EX,
so Redis expires them, and bounds them by its own maxmemory policy).

A Redis outage must never fail a request: every call is bounded by a short timeout, an error is a
miss (or a skipped write), logged once when Redis goes away and once when it is back."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog
from cachetools import TTLCache

from switchboard_router.cache.config import CacheConfig
from switchboard_router.cache.entry import Entry, loads

_log = structlog.get_logger("cache")
REDIS_PREFIX = "switchboard:cache:v1:"


class Store(Protocol):
    async def get(self, key: str) -> Entry | None: ...
    async def put(self, key: str, entry: Entry) -> None: ...
    async def close(self) -> None: ...


class MemoryStore:
    """Bounded twice: by the bytes of the answers (TTLCache's size is each entry's length) and
    by their number; the least recently used go first."""

    def __init__(self, max_entries: int, ttl_seconds: float, *, max_bytes: int = 256 * 1024 * 1024,
                 timer=None) -> None:
        kwargs = {"timer": timer} if timer is not None else {}
        self._max_entries = max_entries
        self._entries: TTLCache[str, Entry] = TTLCache(max_bytes, ttl_seconds, getsizeof=_size,
                                                       **kwargs)

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    async def put(self, key: str, entry: Entry) -> None:
        if _size(entry) > self._entries.maxsize:
            return
        while len(self._entries) >= self._max_entries and key not in self._entries:
            self._entries.popitem()
        self._entries[key] = entry

    @property
    def bytes(self) -> int:
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()


def _size(entry: Entry) -> int:
    return len(entry.data) + 64  # the bytes, and roughly what holding them costs besides


class RedisStore:
    def __init__(self, url: str, ttl_seconds: int, timeout_seconds: float,
                 *, on_error=lambda operation: None) -> None:
        import redis.asyncio as redis  # only where configured

        self._errors = (redis.RedisError, OSError, asyncio.TimeoutError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
            retry_on_timeout=False)
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._on_error = on_error  # counted in the metrics (operation: get, put)
        self._down = False

    async def get(self, key: str) -> Entry | None:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._client.get(REDIS_PREFIX + key)
        except self._errors as exc:
            self._failed("get", exc)
            return None
        self._up()
        return loads(raw) if isinstance(raw, bytes) else None

    async def put(self, key: str, entry: Entry) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(REDIS_PREFIX + key, entry.dumps(), ex=self._ttl)
        except self._errors as exc:
            self._failed("put", exc)
            return
        self._up()

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._on_error(operation)
        if not self._down:
            self._down = True
            _log.warning("redis unreachable; the response cache misses until it is back",
                         error=type(exc).__name__)

    def _up(self) -> None:
        if self._down:
            self._down = False
            _log.info("redis reachable again; the response cache serves from it")

    async def close(self) -> None:
        await self._client.aclose()


def build(config: CacheConfig, *, on_error=lambda operation: None) -> Store:
    if config.backend == "redis":
        assert config.redis_url is not None, "validated by CacheConfig"
        return RedisStore(config.redis_url, config.ttl_seconds, config.redis_timeout_seconds,
                          on_error=on_error)
    return MemoryStore(config.entries, config.ttl_seconds, max_bytes=config.bytes)
