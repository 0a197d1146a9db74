"""What every provider adapter offers the router: one call in, a reply or a stream of bytes out."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from switchboard_common.errors import ApiError

from switchboard_router.domain import Deployment, Endpoint, Tokens


@dataclass(slots=True)
class Call:
    """One attempt at one deployment."""

    endpoint: Endpoint
    body: dict[str, Any]  # the client's JSON, unknown fields kept
    model: str  # as the client asked for it
    upstream_model: str  # as the provider is asked
    deployment: Deployment
    request_id: str
    include_usage: bool = False  # the client asked for the stream's usage chunk
    deadline: float = math.inf  # time.perf_counter() by which the request must be done
    # An Anthropic Messages body to send as it is (model aside), with its anthropic-beta values:
    # set only for a provider whose `speaks_messages` says yes (inbound/native.py).
    native: dict[str, Any] | None = None
    betas: tuple[str, ...] = ()


@dataclass(slots=True)
class Reply:
    """A whole (non-stream) answer: the bytes for the client and the usage the provider reported."""

    data: bytes
    usage: Tokens | None
    text: Callable[[], str]  # the completion's text, to count tokens when usage is None
    parsed: dict[str, Any] | None = None  # `data` as JSON, when the adapter parsed it already


class StreamTally(Protocol):
    """What a provider learned while streaming; readable at any time during the stream."""

    usage: Tokens | None  # reported by the provider (usually with the last chunk)
    error: ApiError | None  # an error the provider reported inside the stream

    def completion_tokens(self) -> int:
        """The completion tokens produced so far: the provider's count once it reported usage,
        until then counted from the text streamed (in bounded memory, see completion.py). Cheap
        enough to call every second; exact once the stream has closed."""


class Provider(Protocol):
    endpoints: frozenset[Endpoint]

    async def send(self, call: Call) -> Reply:
        """The whole answer. Raises ApiError (already mapped) when the provider fails."""

    def stream(self, call: Call) -> tuple[StreamTally, AsyncGenerator[bytes, None]]:
        """SSE bytes as they arrive, one item per provider read, framed `data: ...\\n\\n` and
        ending with `data: [DONE]\\n\\n`. Errors before the first item are raised as ApiError;
        closing the iterator early stops the provider call."""


def speaks_messages(provider: Any, upstream_model: str) -> bool:
    """Whether the provider takes Anthropic's /v1/messages bodies as they are (inbound/native.py)."""
    speaks = getattr(provider, "speaks_messages", None)
    return speaks is not None and speaks(upstream_model)
