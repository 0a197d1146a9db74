"""The usage payloads (one events.v1.UsageRecorded, or a UsageBatch of them) turned into the
entries billing stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from switchboard.events.v1 import events_pb2

from switchboard_billing.domain import UsageEntry
from switchboard_billing.pricing import NOT_BILLED, ModelRef, PriceBook, TokenCounts

MAX_ID = 200
CACHE_PRICE_SOURCE = "cache"

_OUTCOME = {
    events_pb2.OUTCOME_SUCCESS: "success",
    events_pb2.OUTCOME_ERROR: "error",
    events_pb2.OUTCOME_CLIENT_ABORT: "client_abort",
    events_pb2.OUTCOME_INTERRUPTED: "interrupted",
}
_TOKEN_SOURCE = {
    events_pb2.TOKEN_SOURCE_PROVIDER: "provider",
    events_pb2.TOKEN_SOURCE_ESTIMATED: "estimated",
}


class MalformedEvent(ValueError):
    """A payload that can never be stored; the consumer terminates it instead of retrying."""


def entry_from_payload(payload: bytes, *, received_at: datetime) -> UsageEntry:
    try:
        event = events_pb2.UsageRecorded.FromString(payload)
    except DecodeError as exc:
        raise MalformedEvent(f"not a UsageRecorded: {exc}") from None
    return entry_from_event(event, received_at=received_at)


@dataclass(slots=True)
class Batch:
    """A UsageBatch's records as entries; those that can never be stored, with the reason."""

    entries: list[UsageEntry] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    traceparents: dict[str, str] = field(default_factory=dict)  # event id -> W3C traceparent


def entries_from_batch(payload: bytes, *, received_at: datetime) -> Batch:
    """Every record of a batch; a record that is malformed is left out (and named), the others
    stand. A payload that is not a UsageBatch at all is MalformedEvent."""
    try:
        message = events_pb2.UsageBatch.FromString(payload)
    except DecodeError as exc:
        raise MalformedEvent(f"not a UsageBatch: {exc}") from None
    batch = Batch(traceparents=dict(message.traceparents))
    for event in message.records:
        try:
            batch.entries.append(entry_from_event(event, received_at=received_at))
        except MalformedEvent as exc:
            batch.malformed.append(f"{event.event_id[:MAX_ID] or '(no event id)'}: {exc}")
    return batch


def entry_from_event(event: events_pb2.UsageRecorded, *, received_at: datetime) -> UsageEntry:
    """Map one event; `received_at` stands in for a missing occurred_at (the stream's own time)."""
    if not event.request_id or len(event.request_id) > MAX_ID:
        raise MalformedEvent("request_id is empty or longer than 200 characters")
    if len(event.event_id) > MAX_ID:
        raise MalformedEvent("event_id is longer than 200 characters")
    if min(event.prompt_tokens, event.completion_tokens, event.total_tokens,
           event.latency_ms, event.time_to_first_byte_ms, event.cached_prompt_tokens,
           event.cache_write_prompt_tokens, event.reasoning_tokens) < 0:
        raise MalformedEvent("negative token count or duration")
    occurred_at = (event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at")
                   else received_at.astimezone(UTC))
    return UsageEntry.of(
        # Events published before routers minted ids were unique by request id.
        event_id=_text(event.event_id or event.request_id),
        request_id=_text(event.request_id),
        occurred_at=occurred_at,
        key_id=_text(event.key_id),
        tenant_id=_text(event.tenant_id),
        model=_text(event.model),
        provider=_text(event.provider),
        deployment=_text(event.deployment),
        upstream_model=_text(event.upstream_model),
        endpoint=_text(event.endpoint),
        stream=event.stream,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        # An event that counts its parts but not the sum is still worth its sum.
        total_tokens=event.total_tokens or event.prompt_tokens + event.completion_tokens,
        token_source=_TOKEN_SOURCE.get(event.token_source, "unspecified"),
        outcome=_OUTCOME.get(event.outcome, "unspecified"),
        http_status=event.http_status,
        error_type=_text(event.error_type),
        latency_ms=event.latency_ms,
        ttfb_ms=event.time_to_first_byte_ms,
        session_id=_text(event.session_id),
        reserved_micros_usd=event.reserved_micros_usd,
        user_id=_text(event.user_id),
        cached_prompt_tokens=event.cached_prompt_tokens,
        cache_write_prompt_tokens=event.cache_write_prompt_tokens,
        reasoning_tokens=event.reasoning_tokens,
        budget_lease_id=_text(event.budget_lease_id),
        guardrails=_text(event.guardrails),
        rag_sources=_text(event.rag_sources),
        cache_hit=event.cache_hit,
    )


def priced(entry: UsageEntry, book: PriceBook) -> UsageEntry:
    """The entry with its cost: a call that failed before the provider worked on it costs
    nothing (providers do not bill refusals, and the router counts it no tokens); one that failed
    after (an answer an output guardrail blocked, a stream cut midway), an aborted or an
    interrupted one is billed for the tokens it produced, as the provider bills them."""
    if entry.cache_hit:  # the router answered from its cache: no provider billed anything
        return entry.with_price(0, False, CACHE_PRICE_SOURCE)
    if entry.outcome == "error" and not (entry.prompt_tokens or entry.completion_tokens):
        cost = NOT_BILLED
    else:
        cost = book.price(
            ModelRef(model=entry.model, provider=entry.provider, deployment=entry.deployment,
                     upstream_model=entry.upstream_model),
            TokenCounts(prompt=entry.prompt_tokens, completion=entry.completion_tokens,
                        cached_prompt=entry.cached_prompt_tokens,
                        cache_write_prompt=entry.cache_write_prompt_tokens),
            entry.occurred_at)
    return entry.with_price(cost.cost_micros_usd, cost.price_unknown, cost.price_source)


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a stray one must not make the row unstorable.
    return value.replace("\x00", "") if "\x00" in value else value
