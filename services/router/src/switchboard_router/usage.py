"""One usage.recorded event per authenticated request, journaled first and published off the
client's path, in batches (one UsageBatch message per replica every few milliseconds).

A request is written to the journal when it is admitted (`begin`), again once a second while it
stays open (tokens so far), and when it ends (`record`, the event itself), so a router killed
mid-request still bills it at its next start (as interrupted). The event id is minted here, once
per request: it is the JetStream message id and billing's idempotency key, so a re-send is never
counted twice, while `x-request-id` only correlates. Requests refused for lack of a valid key
make no event (a flood of bogus keys must not fill the ledger); they are counted in a metric.

Tokens are the provider's when it reported them, else counted with tiktoken in a worker thread,
so a long answer never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from collections.abc import Sequence
from typing import Any, TypeAlias

import structlog
from prometheus_client import Counter
from switchboard.events.v1 import events_pb2
from switchboard_common.errors import ApiError
from switchboard_common.publisher import BatchPublisher, Record

from switchboard_router import spans
from switchboard_router.domain import Endpoint, Target, Tokens
from switchboard_router.journal import UsageJournal
from switchboard_router.providers.base import StreamTally
from switchboard_router.tokens import Tokenizer, off_loop

_log = structlog.get_logger("usage")
TokenSource: TypeAlias = events_pb2.TokenSource.ValueType
UNAUTHENTICATED = Counter(
    "switchboard_router_unauthenticated_requests_total",
    "Requests refused for lack of a valid key (no usage record is made for them)", ["code"])


class Outcome(Enum):
    SUCCESS = events_pb2.OUTCOME_SUCCESS
    ERROR = events_pb2.OUTCOME_ERROR
    CLIENT_ABORT = events_pb2.OUTCOME_CLIENT_ABORT


_random = random.Random()  # seeded from os.urandom; ids need uniqueness, not secrecy


def mint_event_id() -> str:
    """A UUIDv7 (RFC 9562): Unix milliseconds then 74 random bits, so ids sort by time."""
    rand = _random.getrandbits(74)
    value = ((time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (rand >> 62) << 64
             | 0b10 << 62 | rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    user_id: str = ""
    session_id: str = ""
    guardrails: str = ""  # findings, as the x-switchboard-guardrails header says them
    rag_sources: str = ""  # chunk ids, as x-switchboard-rag-sources lists them
    body: dict | None = None  # the request, to count prompt tokens if the provider gave none
    target: Target | None = None  # the deployment tried last
    attempts: int = 0  # deployments tried (the routing decision, as x-switchboard-attempts says)
    # With tracing on: (target, began, ended, error code) of each attempt, for its span (spans.py).
    attempt_log: list[tuple[Target, float, float, str]] | None = None
    cache_hit: bool = False  # answered from the response cache: costs 0, no provider was called
    answered: bool = False  # the provider answered (a reply, or a stream's first bytes)
    first_byte: float | None = None
    ended: float | None = None
    outcome: Outcome = Outcome.SUCCESS
    http_status: int = 200
    error_type: str = ""
    error_code: str = ""
    usage: Tokens | None = None
    completion_text: Callable[[], str] | None = None
    tally: StreamTally | None = None
    recorded: bool = False
    event_id: str = ""
    # Counted by the progress tick (worker thread) for requests still open after it.
    prompt_estimate: int | None = None
    completion_estimate: int = 0
    quota: Any = None  # the limits' Ticket: its tokens are settled with the real count
    # The budget reservation this request holds (budgets.Reservation), settled when it ends.
    reservation: Any = None
    # The answering deployment's rates (prices.Rates), read once: prices.answering_rates.
    rates: Any = None
    budget_lease_id: str = ""
    reserved_micros_usd: int = 0

    def __post_init__(self) -> None:
        if not self.event_id:
            self.event_id = mint_event_id()

    def failed(self, error: ApiError) -> None:
        self.outcome = Outcome.ERROR
        self.http_status = error.http_status
        self.error_type = error.error_type
        self.error_code = error.code or ""

    def reserve(self, reservation: Any) -> None:
        """The budget reservation (budgets.Reservation) this request holds, or None."""
        if reservation is not None:
            self.reservation = reservation
            self.budget_lease_id = reservation.slice.lease_id
            self.reserved_micros_usd = reservation.held.micros_usd

    def aborted(self) -> None:
        self.outcome = Outcome.CLIENT_ABORT
        self.http_status = 499  # nginx's "client closed request"; no OpenAI status fits


class UsageRecorder:
    def __init__(self, journal: UsageJournal, publisher: BatchPublisher, subject: str,
                 tokenizer: Tokenizer, *, wall_clock: Callable[[], int] = time.time_ns,
                 progress_seconds: float = 1.0,
                 on_tokens: Callable[[Any, int], None] = lambda _quota, _tokens: None,
                 settle: Callable[[Exchange, Tokens], None] | None = None,
                 observe: Callable[[Exchange, Tokens], None] | None = None) -> None:
        self._journal = journal
        self._observe = observe  # its metrics and log line (finished.py), with the final tokens
        self._on_tokens = on_tokens  # the request's real token count, for its rate limits
        self._publisher = publisher
        self._subject = subject
        self._tokenizer = tokenizer
        self._wall_clock = wall_clock
        self._progress_seconds = progress_seconds
        self._settle = settle  # the budget reservation, from the request's final tokens
        self._open: dict[str, Exchange] = {}
        self._pending: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._progress_forever())

    def begin(self, ex: Exchange) -> None:
        """The request was admitted: journal it, so a crash from here on still bills it."""
        self._open[ex.event_id] = ex
        state = self._state(ex, Tokens(0, 0), events_pb2.TOKEN_SOURCE_UNSPECIFIED)
        self._journal.opened(ex.event_id, state.SerializeToString())

    def record(self, ex: Exchange) -> None:
        """Journal and publish the event (counting tokens first, off the loop, if the provider
        gave none); returns at once. Called exactly once per request."""
        if ex.recorded:
            return
        ex.recorded = True
        if ex.ended is None:
            ex.ended = time.perf_counter()
        self._open.pop(ex.event_id, None)
        if not ex.key_id:  # refused for lack of a valid key: no ledger row
            UNAUTHENTICATED.labels(ex.error_code or "unknown").inc()
            if self._observe is not None:
                self._observe(ex, Tokens(0, 0))
            return
        usage = _provider_usage(ex)
        if usage is not None:
            self._finish(ex, usage, events_pb2.TOKEN_SOURCE_PROVIDER)
        elif not _estimable(ex):  # nothing reached a provider, or it refused before working
            self._finish(ex, Tokens(0, 0), events_pb2.TOKEN_SOURCE_UNSPECIFIED)
        else:
            task = asyncio.get_running_loop().create_task(self._finish_estimated(ex))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _finish_estimated(self, ex: Exchange) -> None:
        try:
            tokens = await off_loop(self._estimate, ex)
        except Exception:  # noqa: BLE001 - bill what is known rather than nothing
            _log.exception("token counting failed", request_id=ex.request_id)
            tokens = Tokens(ex.prompt_estimate or 0, ex.completion_estimate)
        self._finish(ex, tokens, events_pb2.TOKEN_SOURCE_ESTIMATED)

    def _finish(self, ex: Exchange, tokens: Tokens, source: TokenSource) -> None:
        if ex.quota is not None:  # a cached answer spent no provider tokens
            self._on_tokens(ex.quota, 0 if ex.cache_hit else tokens.total)
        if self._settle is not None and ex.reservation is not None:
            self._settle(ex, tokens)
        if self._observe is not None:
            self._observe(ex, tokens)
        payload = self.event(ex, tokens, source).SerializeToString()
        self._journal.ended(ex.event_id, payload)
        self._publisher.submit(ex.event_id, payload,
                               trace_headers=spans.record(ex, tokens, self._subject))

    def event(self, ex: Exchange, tokens: Tokens,
              source: TokenSource) -> events_pb2.UsageRecorded:
        event = self._message(ex, tokens, source)
        ended = ex.ended if ex.ended is not None else time.perf_counter()
        event.latency_ms = _ms(ended - ex.started)
        event.outcome, event.http_status = ex.outcome.value, ex.http_status
        event.error_type = ex.error_type
        return event

    def _state(self, ex: Exchange, tokens: Tokens,
               source: TokenSource) -> events_pb2.UsageRecorded:
        """The event as it would read if the router died now: what is known, interrupted."""
        event = self._message(ex, tokens, source)
        event.latency_ms = _ms(time.perf_counter() - ex.started)
        event.outcome = events_pb2.OUTCOME_INTERRUPTED
        event.http_status = 200 if ex.answered else 0
        return event

    def _message(self, ex: Exchange, tokens: Tokens,
                 source: TokenSource) -> events_pb2.UsageRecorded:
        event = events_pb2.UsageRecorded(
            event_id=ex.event_id, request_id=ex.request_id, key_id=ex.key_id,
            tenant_id=ex.tenant_id, model=ex.model, endpoint=ex.endpoint.value, stream=ex.stream,
            prompt_tokens=tokens.prompt, completion_tokens=tokens.completion,
            total_tokens=tokens.total, token_source=source, session_id=ex.session_id,
            user_id=ex.user_id, cached_prompt_tokens=tokens.cached,
            cache_write_prompt_tokens=tokens.cache_write, reasoning_tokens=tokens.reasoning,
            budget_lease_id=ex.budget_lease_id, reserved_micros_usd=ex.reserved_micros_usd,
            guardrails=ex.guardrails, rag_sources=ex.rag_sources,
            time_to_first_byte_ms=_ms(ex.first_byte - ex.started) if ex.first_byte else 0)
        event.occurred_at.FromNanoseconds(self._wall_clock())
        if (target := ex.target) is not None:
            event.provider, event.deployment = target.deployment.provider, target.deployment.name
            event.upstream_model = target.upstream_model
        event.attempts = ex.attempts
        event.cache_hit = ex.cache_hit
        return event

    # --- counting (worker threads) ---------------------------------------------------------------

    def _prompt(self, ex: Exchange) -> int:
        if ex.prompt_estimate is None:
            assert ex.target is not None and ex.body is not None, "counted once a provider works"
            ex.prompt_estimate = self._tokenizer.count_prompt(
                ex.endpoint, ex.target.upstream_model, ex.body)
        return ex.prompt_estimate

    def _estimate(self, ex: Exchange) -> Tokens:
        assert ex.target is not None, "estimated only once a provider worked on it"
        completion = ex.tally.completion_tokens() if ex.tally else self._tokenizer.count(
            ex.target.upstream_model, ex.completion_text() if ex.completion_text else "")
        return Tokens(self._prompt(ex), completion)

    def _progress(self, open_now: list[Exchange]) -> list[tuple[Exchange, bytes]]:
        """Tokens so far of requests still open: counted from where the last tick stopped."""
        out = []
        for ex in open_now:
            try:
                tokens, source = self._tokens_so_far(ex)
            except Exception:  # noqa: BLE001 - the stream moved under us; the next tick retries
                _log.warning("usage progress skipped a request", request_id=ex.request_id,
                             exc_info=True)
                continue
            out.append((ex, self._state(ex, tokens, source).SerializeToString()))
        return out

    def _tokens_so_far(self, ex: Exchange) -> tuple[Tokens, TokenSource]:
        usage = _provider_usage(ex)
        if usage is not None:
            return usage, events_pb2.TOKEN_SOURCE_PROVIDER
        if ex.target is None or ex.body is None:  # no provider is working on it yet
            return Tokens(0, 0), events_pb2.TOKEN_SOURCE_UNSPECIFIED
        if ex.tally is not None:  # it counts as the stream passes, in bounded memory
            ex.completion_estimate = ex.tally.completion_tokens()
        return Tokens(self._prompt(ex), ex.completion_estimate), events_pb2.TOKEN_SOURCE_ESTIMATED

    async def progress(self) -> int:
        """Journal the tokens so far of every request open for a tick or more; returns how many."""
        due = time.perf_counter() - self._progress_seconds
        open_now = [ex for ex in self._open.values() if ex.started <= due]
        if not open_now:
            return 0
        for ex, state in await off_loop(self._progress, open_now):
            if not ex.recorded:
                self._journal.progressed(ex.event_id, state)
        return len(open_now)

    async def _progress_forever(self) -> None:
        while True:
            await asyncio.sleep(self._progress_seconds)
            try:
                await self.progress()
            except Exception:  # noqa: BLE001 - the ticker must outlive any one failure
                _log.exception("usage progress failed")

    async def drain(self, timeout: float) -> int:
        """At shutdown: finish the events being counted, then send the whole backlog to
        JetStream within `timeout`; returns how many stay unacked (the journal keeps them)."""
        deadline = time.monotonic() + timeout
        if self._ticker is not None:
            self._ticker.cancel()
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
        left = await self._publisher.drain(max(0.0, deadline - time.monotonic()))
        if left:
            _log.warning("usage events unacked at shutdown; the journal sends them at the next "
                         "start", count=left, directory=str(self._journal.directory))
        return left


def encode_batch(batch_id: str, records: Sequence[Record]) -> bytes:
    """The UsageBatch message of journaled events (each payload a serialized UsageRecorded)."""
    batch = events_pb2.UsageBatch(batch_id=batch_id)
    add = batch.records.add
    for record in records:
        add().MergeFromString(record.payload)
        if record.trace_headers and (parent := record.trace_headers.get("traceparent")):
            batch.traceparents[record.id] = parent
    return batch.SerializeToString()


def _provider_usage(ex: Exchange) -> Tokens | None:
    return ex.usage if ex.usage is not None else (ex.tally.usage if ex.tally else None)


def _estimable(ex: Exchange) -> bool:
    """Worth counting: a provider worked on it (answered, or the client left mid-call)."""
    return ex.target is not None and ex.body is not None and (
        ex.answered or ex.outcome is Outcome.CLIENT_ABORT)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
