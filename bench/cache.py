"""The response cache's cost per request, in-process: what a request the cache takes no part in
pays (no header, a group that does not cache: nothing is hashed), what keying a request costs
(canonical JSON and BLAKE2b, by body size), and a hit's latency from the request to the cached
bytes, in memory and in Redis (when one answers at SWITCHBOARD_TEST_REDIS_URL, default
127.0.0.1:6379). The fastest of many short batches is kept, as in bench.routing.

    python -m bench.cache            # prints the table
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

from switchboard_common.testing.infra import reachable, redis_url

from switchboard_router.cache import CacheConfig, Entry, ResponseCache
from switchboard_router.cache.stores import MemoryStore, RedisStore, Store
from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext, Tokens

ANSWER = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}' * 16  # ~1 KB


def _request(chars: int) -> ParsedRequest:
    body = {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 256,
            "messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": "x" * chars}]}
    return ParsedRequest(endpoint=Endpoint.CHAT, model="gpt-4o", body=body)


def _cache(store: Store) -> ResponseCache:
    return ResponseCache(CacheConfig(), store, lambda model: (model, False))


def _ctx(switch: str | None) -> RequestContext:
    return RequestContext(request_id="r", key="k", started=0.0, cache_switch=switch)


def _unguarded() -> bool:
    return False


async def _best_us(step: Callable[[], Awaitable[Any]], batches: int, batch: int) -> float:
    best = float("inf")
    gc.collect()
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(batch):
            await step()
        best = min(best, (time.perf_counter() - started) / batch)
    return best * 1e6


async def off_us() -> float:
    cache, ctx, request = _cache(MemoryStore(10, 60)), _ctx(None), _request(1000)

    async def step() -> None:
        cache.plan(ctx, request, "t", _unguarded)

    return await _best_us(step, 200, 500)


async def key_us(chars: int) -> float:
    cache, ctx, request = _cache(MemoryStore(10, 60)), _ctx("on"), _request(chars)

    async def step() -> None:
        cache.plan(ctx, request, "t", _unguarded)

    return await _best_us(step, 100, 100)


async def hit_us(store: Store, chars: int = 1000) -> float:
    cache, ctx, request = _cache(store), _ctx("on"), _request(chars)
    plan = cache.plan(ctx, request, "t", _unguarded)
    assert plan is not None
    await store.put(plan.key, Entry(data=ANSWER, stream=False, tokens=Tokens(10, 20)))

    async def step() -> None:
        found = await cache.get(cache.plan(ctx, request, "t", _unguarded))  # type: ignore[arg-type]
        assert found is not None

    try:
        return await _best_us(step, 50, 50)
    finally:
        await store.close()


async def measure() -> dict[str, Any]:
    out: dict[str, Any] = {"off_us": await off_us(), "key_1kb_us": await key_us(1000),
                           "key_32kb_us": await key_us(32_000),
                           "hit_memory_us": await hit_us(MemoryStore(10, 60))}
    url = redis_url()
    out["hit_redis_us"] = (await hit_us(RedisStore(url, 60, 1.0))) if reachable(url) else None
    return out


def table(r: dict[str, Any]) -> str:
    redis = f"{r['hit_redis_us']:.0f} µs" if r["hit_redis_us"] is not None else "no Redis"
    return "\n".join([
        "| cache off (no header, group not cached) | key, 1 KB prompt | key, 32 KB prompt | "
        "hit, memory | hit, Redis (loopback) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {r['off_us']:.2f} µs | {r['key_1kb_us']:.1f} µs | {r['key_32kb_us']:.1f} µs | "
        f"{r['hit_memory_us']:.1f} µs | {redis} |"])


if __name__ == "__main__":
    print(table(asyncio.run(measure())))
