"""The NATS event payloads carry what their consumers need, on the subjects common publishes to."""

from __future__ import annotations

import re

from google.protobuf.descriptor import FieldDescriptor
from switchboard.events.v1 import events_pb2

from switchboard_common import events
from tests.contract import protoset

FD = FieldDescriptor
INTEGER = (FD.TYPE_INT32, FD.TYPE_INT64)

# What billing settles from and the router's usage line reports (DESIGN.md, step 5).
USAGE_RECORDED = {
    "request_id": (FD.TYPE_STRING,), "key_id": (FD.TYPE_STRING,), "model": (FD.TYPE_STRING,),
    "provider": (FD.TYPE_STRING,), "prompt_tokens": INTEGER, "completion_tokens": INTEGER,
    "total_tokens": INTEGER, "latency_ms": INTEGER, "outcome": (FD.TYPE_ENUM,),
}


def test_usage_recorded_has_what_billing_needs():
    fields = events_pb2.UsageRecorded.DESCRIPTOR.fields_by_name
    missing = set(USAGE_RECORDED) - set(fields)
    assert missing == set()
    wrong = {n: fields[n].type for n, types in USAGE_RECORDED.items() if fields[n].type not in types}
    assert wrong == {}
    assert fields["outcome"].enum_type.full_name == "switchboard.events.v1.Outcome"


def test_outcome_covers_success_error_and_client_abort():
    # DESIGN.md: one event when the call ends - success, error, or the client going away.
    names = set(events_pb2.Outcome.keys())
    assert {"OUTCOME_SUCCESS", "OUTCOME_ERROR", "OUTCOME_CLIENT_ABORT"} <= names


def test_usage_recorded_round_trips_on_the_wire():
    event = events_pb2.UsageRecorded(
        request_id="req-1", key_id="key-1", model="gpt-4o", provider="openai", prompt_tokens=12,
        completion_tokens=30, total_tokens=42, latency_ms=850, outcome=events_pb2.OUTCOME_CLIENT_ABORT,
        reserved_micros_usd=1_500)
    event.occurred_at.FromSeconds(1_700_000_000)
    assert events_pb2.UsageRecorded.FromString(event.SerializeToString()) == event


def _documented_subjects(fds) -> dict[str, str]:
    """Event message -> the subject its comment names (`Subject "usage.recorded"`)."""
    file = next(f for f in protoset.switchboard_files(fds) if f.package == "switchboard.events.v1")
    found = {}
    for index, message in enumerate(file.message_type):
        match = re.search(r'Subject "([a-z0-9_.]+)"', protoset.comments(file, (4, index)))
        if match:
            found[message.name] = match.group(1)
    return found


def test_every_event_names_its_subject_and_common_publishes_on_it(fds):
    documented = _documented_subjects(fds)
    events_file = events_pb2.DESCRIPTOR
    assert set(documented) == set(events_file.message_types_by_name), "every event names its subject"
    assert documented["UsageRecorded"] == events.USAGE_RECORDED
    assert documented["UsageBatch"] == events.USAGE_BATCH == events.batch_subject(
        events.USAGE_RECORDED)
    assert documented["KeysChanged"] == events.KEYS_CHANGED
    assert documented["BudgetAlert"] == events.BUDGET_ALERT
    # The USAGE stream holds `usage.>`, so the usage event must be under it to be durable.
    assert events.USAGE_RECORDED.startswith("usage.") and events.USAGE_BATCH.startswith("usage.")


def test_a_batch_is_its_events_as_they_are():
    """A router builds a batch from the journal's bytes; billing reads the same events back."""
    events_in = [events_pb2.UsageRecorded(event_id=f"e{i}", request_id=f"r{i}", total_tokens=i)
                 for i in range(3)]
    batch = events_pb2.UsageBatch(batch_id="b", records=events_in)
    assert list(events_pb2.UsageBatch.FromString(batch.SerializeToString()).records) == events_in
