"""UsageRecorded events mapped to the rows billing stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.events.v1 import events_pb2

from switchboard_billing.records import MalformedEvent, entry_from_event, entry_from_payload

RECEIVED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EVENT_ID = "0193d2a4-7b1c-7c3e-9f00-5a1b2c3d4e5f"


def full_event() -> events_pb2.UsageRecorded:
    at = Timestamp()
    at.FromDatetime(datetime(2025, 2, 28, 23, 59, 59, 500000, tzinfo=UTC))
    return events_pb2.UsageRecorded(
        event_id=EVENT_ID, request_id="req-1", occurred_at=at, key_id="key_a", tenant_id="acme", model="gpt-4o",
        provider="openai", deployment="openai-east", upstream_model="gpt-4o-2024-08-06",
        endpoint="chat.completions", stream=True, prompt_tokens=12, completion_tokens=30,
        total_tokens=42, token_source=events_pb2.TOKEN_SOURCE_PROVIDER, latency_ms=850,
        time_to_first_byte_ms=120, outcome=events_pb2.OUTCOME_SUCCESS, http_status=200,
        error_type="", reserved_micros_usd=9000, session_id="s-1", user_id="u-1",
        cached_prompt_tokens=4, cache_write_prompt_tokens=2, reasoning_tokens=7,
        budget_lease_id="lease-1", guardrails="warn:pii/email", rag_sources="doc#0",
        cache_hit=True)


def test_every_field_lands_in_its_column():
    event = full_event()
    entry = entry_from_payload(event.SerializeToString(), received_at=RECEIVED)
    assert entry.as_row() == {
        "event_id": EVENT_ID, "request_id": "req-1",
        "occurred_at": datetime(2025, 2, 28, 23, 59, 59, 500000, tzinfo=UTC),
        "key_id": "key_a", "tenant_id": "acme", "model": "gpt-4o", "provider": "openai",
        "deployment": "openai-east", "upstream_model": "gpt-4o-2024-08-06",
        "endpoint": "chat.completions", "stream": True, "prompt_tokens": 12,
        "completion_tokens": 30, "total_tokens": 42, "token_source": "provider",
        "cost_micros_usd": 0, "outcome": "success", "http_status": 200, "error_type": "",
        "latency_ms": 850, "ttfb_ms": 120, "session_id": "s-1", "reserved_micros_usd": 9000,
        "user_id": "u-1", "cached_prompt_tokens": 4, "cache_write_prompt_tokens": 2,
        "reasoning_tokens": 7, "budget_lease_id": "lease-1",
        "guardrails": "warn:pii/email", "rag_sources": "doc#0", "cache_hit": True,
        # Priced by the consumer, not here: unknown until then.
        "price_unknown": True, "price_source": "",
    }


@pytest.mark.parametrize("outcome, name", [
    (events_pb2.OUTCOME_SUCCESS, "success"), (events_pb2.OUTCOME_ERROR, "error"),
    (events_pb2.OUTCOME_CLIENT_ABORT, "client_abort"), (events_pb2.OUTCOME_INTERRUPTED, "interrupted"),
    (events_pb2.OUTCOME_UNSPECIFIED, "unspecified"),
    (99, "unspecified"),  # an outcome added to the proto later
])
def test_outcomes(outcome, name):
    event = full_event()
    event.outcome = outcome
    assert entry_from_event(event, received_at=RECEIVED).outcome == name


def test_estimated_tokens_and_missing_time_and_total():
    event = events_pb2.UsageRecorded(request_id="r", prompt_tokens=5, completion_tokens=7,
                                     token_source=events_pb2.TOKEN_SOURCE_ESTIMATED)
    entry = entry_from_event(event, received_at=RECEIVED)
    assert entry.occurred_at == RECEIVED  # the stream's time stands in
    assert entry.total_tokens == 12
    assert entry.token_source == "estimated"


def test_the_event_id_is_the_key_and_the_request_id_may_repeat():
    first, second = full_event(), full_event()
    second.event_id = "0193d2a4-7b1c-7c3e-9f00-000000000002"
    a, b = (entry_from_event(e, received_at=RECEIVED) for e in (first, second))
    assert a.request_id == b.request_id and a.event_id != b.event_id
    legacy = full_event()
    legacy.ClearField("event_id")  # published before routers minted ids
    assert entry_from_event(legacy, received_at=RECEIVED).event_id == "req-1"


def test_nul_characters_are_dropped():
    event = full_event()
    event.model = "gpt\x00-4o"
    assert entry_from_event(event, received_at=RECEIVED).model == "gpt-4o"


@pytest.mark.parametrize("payload", [
    b"\xff\xff\xff\xff",  # not protobuf
    events_pb2.UsageRecorded(model="m").SerializeToString(),  # no request id
    events_pb2.UsageRecorded(request_id="x" * 201).SerializeToString(),
    events_pb2.UsageRecorded(request_id="r", prompt_tokens=-1).SerializeToString(),
])
def test_malformed_payloads(payload):
    with pytest.raises(MalformedEvent):
        entry_from_payload(payload, received_at=RECEIVED)


def test_a_decoded_entry_has_every_field_as_the_dataclass_would_set_it():
    """UsageEntry.of fills the dict directly: it must hold every field and nothing else."""
    from dataclasses import fields as dataclass_fields

    from switchboard_billing.domain import UsageEntry

    entry = entry_from_event(events_pb2.UsageRecorded(
        request_id="r", event_id="e", model="m", prompt_tokens=3), received_at=datetime.now(UTC))
    assert set(entry.__dict__) == {f.name for f in dataclass_fields(entry)}
    assert (entry.cost_micros_usd, entry.price_unknown, entry.price_source) == (0, True, "")
    assert entry == UsageEntry(**entry.__dict__)
