"""One usage.recorded event per request, published after the response, off the client's path.

The request id is the JetStream message id, so a re-send from the outbox is dropped by the server.
Tokens are the provider's when it reported them, else counted here with tiktoken (after the client
has its answer, so the counting costs the client nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.events.v1 import events_pb2
from switchboard_common.errors import ApiError
from switchboard_common.events import EventPublisher

from switchboard_router.domain import Endpoint, Target, Tokens
from switchboard_router.providers.base import StreamTally
from switchboard_router.tokens import Tokenizer

_log = structlog.get_logger("usage")


class Outcome(Enum):
    SUCCESS = events_pb2.OUTCOME_SUCCESS
    ERROR = events_pb2.OUTCOME_ERROR
    CLIENT_ABORT = events_pb2.OUTCOME_CLIENT_ABORT


@dataclass(slots=True)
class Exchange:
    """One request as its usage event will tell it, filled in as the request goes."""

    request_id: str
    endpoint: Endpoint
    started: float  # perf_counter
    model: str = ""
    stream: bool = False
    key_id: str = ""
    tenant_id: str = ""
    session_id: str = ""
    body: dict | None = None  # the request, to count prompt tokens if the provider gave none
    target: Target | None = None  # the deployment tried last
    answered: bool = False  # the provider answered (a reply, or a stream's first bytes)
    first_byte: float | None = None
    ended: float | None = None
    outcome: Outcome = Outcome.SUCCESS
    http_status: int = 200
    error_type: str = ""
    usage: Tokens | None = None
    completion_text: Callable[[], str] | None = None
    tally: StreamTally | None = None
    recorded: bool = False

    def failed(self, error: ApiError) -> None:
        self.outcome = Outcome.ERROR
        self.http_status = error.http_status
        self.error_type = error.error_type

    def aborted(self) -> None:
        self.outcome = Outcome.CLIENT_ABORT
        self.http_status = 499  # nginx's "client closed request"; no OpenAI status fits


class UsageRecorder:
    def __init__(self, publisher: EventPublisher, subject: str, tokenizer: Tokenizer,
                 wall_clock: Callable[[], int] = time.time_ns) -> None:
        self._publisher = publisher
        self._subject = subject
        self._tokenizer = tokenizer
        self._wall_clock = wall_clock
        self._pending: set[asyncio.Task] = set()

    def record(self, exchange: Exchange) -> None:
        """Schedule the event; returns at once. Called exactly once per request."""
        if exchange.recorded:
            return
        exchange.recorded = True
        if exchange.ended is None:
            exchange.ended = time.perf_counter()
        task = asyncio.get_running_loop().create_task(self._publish(exchange))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, exchange: Exchange) -> None:
        try:
            event = self.event(exchange)
            await self._publisher.publish(self._subject, event, exchange.request_id)
        except Exception:  # noqa: BLE001 - a lost event must be loud, never crash the loop
            _log.exception("usage event not recorded", request_id=exchange.request_id)

    def event(self, ex: Exchange) -> events_pb2.UsageRecorded:
        tokens, source = self._tokens(ex)
        occurred = Timestamp()
        occurred.FromNanoseconds(self._wall_clock())
        target = ex.target
        return events_pb2.UsageRecorded(
            request_id=ex.request_id, occurred_at=occurred, key_id=ex.key_id,
            tenant_id=ex.tenant_id, model=ex.model,
            provider=target.deployment.provider if target else "",
            deployment=target.deployment.name if target else "",
            upstream_model=target.upstream_model if target else "",
            endpoint=ex.endpoint.value, stream=ex.stream,
            prompt_tokens=tokens.prompt, completion_tokens=tokens.completion,
            total_tokens=tokens.total, token_source=source,
            latency_ms=_ms(ex.ended - ex.started),
            time_to_first_byte_ms=_ms(ex.first_byte - ex.started) if ex.first_byte else 0,
            outcome=ex.outcome.value, http_status=ex.http_status, error_type=ex.error_type,
            session_id=ex.session_id)

    def _tokens(self, ex: Exchange) -> tuple[Tokens, int]:
        usage = ex.usage if ex.usage is not None else (ex.tally.usage if ex.tally else None)
        if usage is not None:
            return usage, events_pb2.TOKEN_SOURCE_PROVIDER
        # Nothing reached a provider, or it refused before working: nothing to count.
        if ex.target is None or ex.body is None or not (
                ex.answered or ex.outcome is Outcome.CLIENT_ABORT):
            return Tokens(0, 0), events_pb2.TOKEN_SOURCE_UNSPECIFIED
        model = ex.target.upstream_model
        prompt = self._tokenizer.count_prompt(ex.endpoint, model, ex.body)
        text = ex.tally.completion_text() if ex.tally else (
            ex.completion_text() if ex.completion_text else "")
        return Tokens(prompt, self._tokenizer.count(model, text)), events_pb2.TOKEN_SOURCE_ESTIMATED

    async def drain(self, timeout: float) -> None:
        """Wait for the events still being published (at shutdown): none may be lost."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=timeout)
            if late:
                _log.error("usage events still unpublished at shutdown", count=len(late))


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
