"""The response cache's Redis store against a real Redis (SWITCHBOARD_TEST_REDIS_URL, default
127.0.0.1:6379): entries shared by replicas, expired by Redis, and an outage that is a miss."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import structlog
from switchboard_common.testing.infra import (
    REDIS_VARIABLE,
    free_port,
    reachable,
    redis_url,
    unreachable_reason,
)

from switchboard_router.cache.entry import Entry
from switchboard_router.cache.stores import REDIS_PREFIX, RedisStore
from switchboard_router.domain import Tokens

pytestmark = pytest.mark.timeout(30)
ENTRY = Entry(data=b'data: {"a": 1}\n\ndata: [DONE]\n\n', stream=True, tokens=Tokens(9, 4, 2))


@pytest.fixture
def url() -> str:
    url = redis_url()
    if not reachable(url):
        pytest.skip(unreachable_reason("Redis", url, REDIS_VARIABLE))
    return url


@pytest.fixture
async def stores(url):
    made: list[RedisStore] = []

    def make(ttl: int = 60) -> RedisStore:
        made.append(RedisStore(url, ttl, 1.0))
        return made[-1]

    yield make
    for store in made:
        await store.close()


async def test_one_replica_stores_and_another_reads_it(stores):
    key = secrets.token_hex(16)
    first, second = stores(), stores()
    assert await second.get(key) is None
    await first.put(key, ENTRY)
    assert await second.get(key) == ENTRY
    ttl = await second._client.ttl(REDIS_PREFIX + key)
    assert 55 <= ttl <= 60  # Redis expires it (SET ... EX)


async def test_entries_expire_after_the_ttl(stores):
    key = secrets.token_hex(16)
    store = stores(ttl=1)
    await store.put(key, ENTRY)
    assert await store.get(key) == ENTRY
    await asyncio.sleep(1.3)
    assert await store.get(key) is None


async def test_a_value_it_cannot_read_is_a_miss(stores):
    key = secrets.token_hex(16)
    store = stores()
    await store._client.set(REDIS_PREFIX + key, b"garbage", ex=60)
    assert await store.get(key) is None


async def test_redis_down_is_a_miss_logged_once():
    errors: list[str] = []
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", 60, 0.2, on_error=errors.append)
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                assert await store.get("k") is None
                await store.put("k", ENTRY)  # no exception: the answer is served regardless
    finally:
        await store.close()
    assert errors == ["get", "put"] * 3
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and "redis unreachable" in warnings[0]["event"]
