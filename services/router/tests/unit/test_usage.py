"""Usage events: one per request, provider tokens when given, tiktoken otherwise, nothing lost."""

from __future__ import annotations

from switchboard.events.v1 import events_pb2
from switchboard_common.errors import RateLimited

from switchboard_router.domain import Deployment, Endpoint, Target, Tokens
from switchboard_router.usage import Exchange, UsageRecorder

DEP = Deployment(route="m", name="p/m", provider="p", model="up", weight=1, timeout_seconds=1,
                 read_timeout_seconds=1, connect_timeout_seconds=1)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, events_pb2.UsageRecorded, str]] = []

    async def publish(self, subject, event, msg_id) -> bool:
        self.sent.append((subject, event, msg_id))
        return True


def _exchange(**kw) -> Exchange:
    return Exchange(request_id="r1", endpoint=Endpoint.CHAT, started=10.0, model="m", body=BODY,
                    target=Target(DEP, "up"), **kw)


async def test_one_event_per_request_with_provider_tokens(tokenizer):
    publisher = FakePublisher()
    recorder = UsageRecorder(publisher, "usage.recorded", tokenizer, wall_clock=lambda: 1_700_000_000_000_000_000)
    ex = _exchange(answered=True, usage=Tokens(5, 6), first_byte=10.25, ended=10.5, key_id="k",
                   tenant_id="t", session_id="s")
    recorder.record(ex)
    recorder.record(ex)  # a second call is ignored
    await recorder.drain(1)
    (subject, event, msg_id), = publisher.sent
    assert (subject, msg_id, event.request_id) == ("usage.recorded", "r1", "r1")
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens) == (5, 6, 11)
    assert event.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert (event.latency_ms, event.time_to_first_byte_ms) == (500, 250)
    assert (event.provider, event.deployment, event.upstream_model, event.endpoint) == (
        "p", "p/m", "up", "chat.completions")
    assert (event.key_id, event.tenant_id, event.session_id) == ("k", "t", "s")
    assert event.occurred_at.seconds == 1_700_000_000
    assert event.outcome == events_pb2.OUTCOME_SUCCESS and event.http_status == 200


async def test_tokens_are_estimated_when_the_provider_gave_none(tokenizer):
    publisher = FakePublisher()
    recorder = UsageRecorder(publisher, "s", tokenizer)
    aborted = _exchange(ended=11.0, completion_text=lambda: "partial answer")
    aborted.aborted()
    recorder.record(aborted)
    refused = _exchange(ended=11.0)
    refused.failed(RateLimited("slow down"))
    recorder.record(refused)
    await recorder.drain(1)
    first, second = (event for _, event, _ in publisher.sent)
    assert first.outcome == events_pb2.OUTCOME_CLIENT_ABORT
    assert first.token_source == events_pb2.TOKEN_SOURCE_ESTIMATED
    assert first.prompt_tokens == tokenizer.count_chat("up", BODY["messages"])
    assert first.completion_tokens == tokenizer.count("up", "partial answer")
    # The provider refused before working: nothing to bill.
    assert (second.outcome, second.http_status, second.error_type) == (
        events_pb2.OUTCOME_ERROR, 429, "rate_limit_error")
    assert (second.total_tokens, second.token_source) == (0, events_pb2.TOKEN_SOURCE_UNSPECIFIED)
