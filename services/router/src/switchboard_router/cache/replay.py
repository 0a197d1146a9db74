"""A cached answer served again: the same JSON body, or the same SSE bytes, byte for byte; to
typed gRPC clients as the same objects. It costs nothing (x-switchboard-cost-usd: 0.000000), and
its usage event carries the cached answer's tokens with cache_hit."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from switchboard_router.cache.entry import Entry
from switchboard_router.costs import COST_HEADER
from switchboard_router.domain import RequestContext
from switchboard_router.prices import usd
from switchboard_router.stream_objects import stream_chunks
from switchboard_router.usage import Exchange

JSON = "application/json"
SSE = "text/event-stream"


async def replay(entry: Entry, ex: Exchange, ctx: RequestContext,
                 make: Callable[[dict[str, Any]], Any] | None) -> AsyncGenerator[Any, None]:
    """A cached answer, as the first client got it: the same JSON, or the same SSE bytes. It
    costs nothing; the usage event records the answer's tokens with cache_hit."""
    ex.cache_hit, ex.answered, ex.usage = True, True, entry.tokens
    ctx.native = entry.native  # the format it was kept in: /v1/messages reads it accordingly
    ctx.headers.append((COST_HEADER, usd(0)))
    ex.first_byte = time.perf_counter()
    if not entry.stream:
        yield (JSON, entry.data) if make is None else make(orjson.loads(entry.data))
        return
    ctx.trailers.append((COST_HEADER, usd(0)))
    if make is None:
        yield SSE, entry.data
        return
    async for chunk in stream_chunks(_once(entry.data), ex):
        yield make(chunk)


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data
