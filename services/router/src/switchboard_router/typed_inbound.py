"""The typed twins of POST /v1/messages and POST /v1/responses: a typed request as the JSON body
the route takes, and the route's answer (its JSON, or each of its SSE events) as typed messages.
Translation only: the twins run the route's own code (inbound/serve.py), so admission, limits,
budgets, guardrails, stored responses and the one usage record are the route's."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, TypeVar

import orjson
from google.protobuf.message import Message
from switchboard_common.errors import (
    ApiError,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)

from switchboard_router import typed
from switchboard_router.codecs.sse import SseDecoder
from switchboard_router.gateway import SSE

M = TypeVar("M", bound=Message)

# An error event's type (Anthropic's, or OpenAI's in a Responses stream) as the error it reports.
_REPORTED: dict[str, type[ApiError]] = {
    "rate_limit_error": RateLimited, "timeout_error": UpstreamTimeout, "timeout": UpstreamTimeout,
    "overloaded_error": ServiceUnavailable, "service_unavailable": ServiceUnavailable}


def body(request: Message, *, stream: bool | None = None) -> bytes:
    """The typed request as the route's JSON body: its extra_body merged in, "stream" the RPC's
    (None: a route without one, count_tokens)."""
    out = _whole_numbers(typed.to_json(request))
    extra = out.pop("extra_body", None)
    if extra:
        out.update(extra)
    if stream is not None:
        out["stream"] = stream
    return orjson.dumps(out)


def _whole_numbers(value: Any) -> Any:
    """Struct and Value hold every number as a double: 3 would reach the route as 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


async def answers(pieces: AsyncGenerator[tuple[str, bytes], None],
                  cls: type[M]) -> AsyncGenerator[M, None]:
    """The route's answer as `cls` messages: its JSON whole, or each SSE event's object. An error
    event (the stream failed after its first event) is raised as the error it reports, so the RPC
    ends with that status, as a chat twin's does."""
    decoder = SseDecoder()
    async with aclosing(pieces) as it:
        async for content_type, data in it:
            if content_type != SSE:
                yield typed.to_message(orjson.loads(data), cls)
                continue
            for event in decoder.feed(data):
                if event.data is None:
                    continue
                obj = orjson.loads(event.data)
                if event.event == "error":
                    raise reported(obj)
                yield typed.to_message(obj, cls)


def reported(event: dict[str, Any]) -> ApiError:
    error: dict[str, Any] = event["error"] if isinstance(event.get("error"), dict) else {}
    cls = _REPORTED.get(str(error.get("type")), UpstreamError)
    return cls(str(error.get("message") or "The provider reported an error during the stream."),
               code=error.get("code") if isinstance(error.get("code"), str) else None)
