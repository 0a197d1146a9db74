"""The usage payloads (one events.v1.UsageRecorded, or a UsageBatch of them) turned into the
entries billing stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError
from switchboard.events.v1 import events_pb2

from switchboard_billing.domain import UsageEntry
from switchboard_billing.pricing import NOT_BILLED, PriceBook

MAX_ID = 200
CACHE_PRICE_SOURCE = "cache"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT_FIELDS = ("event_id", "request_id", "key_id", "tenant_id", "model", "provider",
                "deployment", "upstream_model", "endpoint", "error_type", "session_id",
                "user_id", "budget_lease_id", "guardrails", "rag_sources")

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
    return entry_from_event(event, received_at=received_at, nul_free=b"\x00" not in payload)


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
    # No NUL byte anywhere in the payload: no string in it holds one (one scan, not 15 a record).
    nul_free = b"\x00" not in payload
    for event in message.records:
        try:
            batch.entries.append(entry_from_event(event, received_at=received_at,
                                                  nul_free=nul_free))
        except MalformedEvent as exc:
            batch.malformed.append(f"{event.event_id[:MAX_ID] or '(no event id)'}: {exc}")
    return batch


def entry_from_event(event: events_pb2.UsageRecorded, *, received_at: datetime,
                     nul_free: bool = False) -> UsageEntry:
    """Map one event; `received_at` stands in for a missing occurred_at (the stream's own time).
    `nul_free`: the caller knows no string of the event holds a NUL (none to strip). Per record
    on billing's hot path: each field is read from the message once."""
    request_id, event_id = event.request_id, event.event_id
    if not request_id or len(request_id) > MAX_ID:
        raise MalformedEvent("request_id is empty or longer than 200 characters")
    if len(event_id) > MAX_ID:
        raise MalformedEvent("event_id is longer than 200 characters")
    prompt, completion, total = event.prompt_tokens, event.completion_tokens, event.total_tokens
    latency, ttfb, cached = event.latency_ms, event.time_to_first_byte_ms, event.cached_prompt_tokens
    written, reasoning = event.cache_write_prompt_tokens, event.reasoning_tokens
    if min(prompt, completion, total, latency, ttfb, cached, written, reasoning) < 0:
        raise MalformedEvent("negative token count or duration")
    values: dict[str, Any] = {
        # Events published before routers minted ids were unique by request id.
        "event_id": event_id or request_id,
        "request_id": request_id,
        "occurred_at": (_utc(event.occurred_at) if event.HasField("occurred_at")
                        else received_at.astimezone(UTC)),
        "key_id": event.key_id,
        "tenant_id": event.tenant_id,
        "model": event.model,
        "provider": event.provider,
        "deployment": event.deployment,
        "upstream_model": event.upstream_model,
        "endpoint": event.endpoint,
        "stream": event.stream,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        # An event that counts its parts but not the sum is still worth its sum.
        "total_tokens": total or prompt + completion,
        "token_source": _TOKEN_SOURCE.get(event.token_source, "unspecified"),
        "outcome": _OUTCOME.get(event.outcome, "unspecified"),
        "http_status": event.http_status,
        "error_type": event.error_type,
        "latency_ms": latency,
        "ttfb_ms": ttfb,
        "session_id": event.session_id,
        "reserved_micros_usd": event.reserved_micros_usd,
        "user_id": event.user_id,
        "cached_prompt_tokens": cached,
        "cache_write_prompt_tokens": written,
        "reasoning_tokens": reasoning,
        "budget_lease_id": event.budget_lease_id,
        "guardrails": event.guardrails,
        "rag_sources": event.rag_sources,
        "cache_hit": event.cache_hit,
    }
    if not nul_free:
        for name in _TEXT_FIELDS:
            # PostgreSQL text cannot hold NUL; a stray one must not make the row unstorable.
            if "\x00" in (value := values[name]):
                values[name] = value.replace("\x00", "")
    return UsageEntry.of(values)


def _utc(at) -> datetime:
    # Timestamp.ToDatetime's value (microseconds rounded toward zero), without its generality.
    nanos = at.nanos
    micros = nanos // 1000 if nanos >= 0 else -(-nanos // 1000)
    try:
        return _EPOCH + timedelta(seconds=at.seconds, microseconds=micros)
    except OverflowError:
        raise MalformedEvent("occurred_at is out of range") from None


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
        cost = book.tariff(entry.model, entry.provider, entry.deployment,
                           entry.upstream_model).price(
            entry.prompt_tokens, entry.completion_tokens, entry.cached_prompt_tokens,
            entry.cache_write_prompt_tokens, entry.occurred_at)
    return entry.with_price(cost.cost_micros_usd, cost.price_unknown, cost.price_source)
