"""What every provider adapter offers the router: one call in, a reply or a stream of bytes out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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


@dataclass(slots=True)
class Reply:
    """A whole (non-stream) answer: the bytes for the client and the usage the provider reported."""

    data: bytes
    usage: Tokens | None
    text: Callable[[], str]  # the completion's text, to count tokens when usage is None


class StreamTally(Protocol):
    """What a provider learned while streaming, read once the stream is over."""

    usage: Tokens | None  # reported by the provider
    error: ApiError | None  # an error the provider reported inside the stream

    def completion_text(self) -> str:
        """The text produced so far, to count tokens when usage is None."""


class Provider(Protocol):
    endpoints: frozenset[Endpoint]

    async def send(self, call: Call) -> Reply:
        """The whole answer. Raises ApiError (already mapped) when the provider fails."""

    def stream(self, call: Call) -> tuple[StreamTally, AsyncIterator[bytes]]:
        """SSE bytes as they arrive, one item per provider read, framed `data: ...\\n\\n` and
        ending with `data: [DONE]\\n\\n`. Errors before the first item are raised as ApiError;
        closing the iterator early stops the provider call."""
