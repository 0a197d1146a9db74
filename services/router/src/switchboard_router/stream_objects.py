"""A stream's SSE bytes as the JSON objects typed gRPC clients get, for the gateway and for
streams replayed from the response cache."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from switchboard_common.errors import UpstreamError

from switchboard_router.codecs import sse
from switchboard_router.providers.base import Reply
from switchboard_router.usage import Exchange


async def stream_chunks(pieces: AsyncGenerator[bytes, None], ex: Exchange) -> AsyncGenerator[dict[str, Any], None]:
    """A stream's chunks as JSON objects, for typed clients: each event parsed once, [DONE] and
    comments left out, and an error event raised as the error the provider reported."""
    decoder = sse.SseDecoder()
    async for data in pieces:
        for event in decoder.feed(data):
            if event.data is None or event.data == b"[DONE]":
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                raise UpstreamError("The provider sent a stream event that is not a JSON object.",
                                    code="invalid_upstream_response")
            if "error" in chunk and not chunk.get("choices"):
                raise (ex.tally.error if ex.tally and ex.tally.error else
                       UpstreamError("The provider reported an error during the stream."))
            yield chunk


def whole_object(reply: Reply, data: bytes) -> dict[str, Any]:
    """A unary answer as one JSON object (the reply's parse, unless a guardrail changed the bytes)."""
    if reply.parsed is not None and data is reply.data:
        return reply.parsed
    parsed = orjson.loads(data)
    if not isinstance(parsed, dict):
        raise UpstreamError("The provider returned a response that is not a JSON object.",
                            code="invalid_upstream_response")
    return parsed
