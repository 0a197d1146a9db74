"""Usage events: one per authenticated request, journaled before it is published, provider tokens
when given, tiktoken (off the event loop) otherwise, and progress for requests still open."""

from __future__ import annotations

import threading
import time
import uuid

from switchboard.events.v1 import events_pb2
from switchboard_common.errors import RateLimited, Unauthenticated
from switchboard_common.journal import SegmentLog

from switchboard_router.domain import Deployment, Endpoint, Target, Tokens
from switchboard_router.journal import UsageJournal
from switchboard_common.publisher import Record
from switchboard_router.usage import Exchange, UsageRecorder, encode_batch, mint_event_id

DEP = Deployment(route="m", name="p/m", provider="p", model="up", weight=1, timeout_seconds=1,
                 read_timeout_seconds=1, connect_timeout_seconds=1)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, events_pb2.UsageRecorded]] = []

    def submit(self, msg_id, payload, trace_headers=None) -> None:
        self.sent.append((msg_id, events_pb2.UsageRecorded.FromString(payload)))

    async def drain(self, timeout) -> int:
        return 0


class Tally:
    """A stream's tally, as a provider keeps it: the tokens of the text streamed so far."""

    usage = None
    error = None

    def __init__(self, tokenizer) -> None:
        self.parts: list[str] = []
        self.threads: set[str] = set()
        self._tokenizer = tokenizer

    def completion_tokens(self) -> int:
        self.threads.add(threading.current_thread().name)
        return self._tokenizer.count("up", "".join(self.parts))


def _exchange(**kw) -> Exchange:
    return Exchange(**{"request_id": "r1", "endpoint": Endpoint.CHAT, "started": 10.0,
                       "model": "m", "body": BODY, "target": Target(DEP, "up"),
                       "key_id": "k", **kw})


def _recorder(tmp_path, tokenizer, **kw):
    journal = UsageJournal(SegmentLog(tmp_path / "journal", flush_seconds=0.001))
    journal.recover()
    publisher = FakePublisher()
    return UsageRecorder(journal, publisher, "usage.recorded", tokenizer, **kw), journal, publisher


def test_event_ids_are_uuid7_and_unique():
    ids = {mint_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert {uuid.UUID(i).version for i in ids} == {7}
    first = mint_event_id()
    time.sleep(0.002)
    later = mint_event_id()
    assert first < later  # time-ordered: billing's primary key index stays append-mostly


async def test_one_event_per_request_with_provider_tokens(tmp_path, tokenizer):
    recorder, journal, publisher = _recorder(
        tmp_path, tokenizer, wall_clock=lambda: 1_700_000_000_000_000_000)
    ex = _exchange(answered=True, usage=Tokens(5, 6), first_byte=10.25, ended=10.5,
                   tenant_id="t", session_id="s", guardrails="warn:pii/email",
                   rag_sources="doc#0,doc#1")
    recorder.begin(ex)
    recorder.record(ex)
    recorder.record(ex)  # a second call is ignored
    await recorder.drain(1)
    (msg_id, event), = publisher.sent
    assert (msg_id, event.event_id, event.request_id) == (ex.event_id, ex.event_id, "r1")
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens) == (5, 6, 11)
    assert event.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert (event.latency_ms, event.time_to_first_byte_ms) == (500, 250)
    assert (event.provider, event.deployment, event.upstream_model, event.endpoint) == (
        "p", "p/m", "up", "chat.completions")
    assert (event.key_id, event.tenant_id, event.session_id) == ("k", "t", "s")
    assert (event.guardrails, event.rag_sources) == ("warn:pii/email", "doc#0,doc#1")
    assert event.occurred_at.seconds == 1_700_000_000
    assert event.outcome == events_pb2.OUTCOME_SUCCESS and event.http_status == 200
    assert len(journal) == 1  # ended, waiting for JetStream's ack
    journal.acked([ex.event_id])
    assert len(journal) == 0


async def test_tokens_are_estimated_off_the_loop_when_the_provider_gave_none(tmp_path, tokenizer):
    recorder, _, publisher = _recorder(tmp_path, tokenizer)
    tally = Tally(tokenizer)
    tally.parts = ["partial ", "answer"]
    aborted = _exchange(ended=11.0, tally=tally)
    aborted.aborted()
    recorder.record(aborted)
    refused = _exchange(ended=11.0)
    refused.failed(RateLimited("slow down"))
    recorder.record(refused)
    await recorder.drain(1)
    by_id = dict(publisher.sent)
    first, second = by_id[aborted.event_id], by_id[refused.event_id]
    assert first.outcome == events_pb2.OUTCOME_CLIENT_ABORT
    assert first.token_source == events_pb2.TOKEN_SOURCE_ESTIMATED
    assert first.prompt_tokens == tokenizer.count_chat("up", BODY["messages"])
    assert first.completion_tokens == tokenizer.count("up", "partial answer")
    assert threading.main_thread().name not in tally.threads  # counted in a worker thread
    # The provider refused before working: nothing to bill.
    assert (second.outcome, second.http_status, second.error_type) == (
        events_pb2.OUTCOME_ERROR, 429, "rate_limit_error")
    assert (second.total_tokens, second.token_source) == (0, events_pb2.TOKEN_SOURCE_UNSPECIFIED)


async def test_a_request_without_a_valid_key_makes_no_event(tmp_path, tokenizer):
    recorder, journal, publisher = _recorder(tmp_path, tokenizer)
    ex = _exchange(key_id="")
    ex.failed(Unauthenticated("Incorrect API key provided.", code="invalid_api_key"))
    recorder.record(ex)
    await recorder.drain(1)
    assert publisher.sent == [] and len(journal) == 0


async def test_progress_journals_tokens_so_far_of_long_requests_only(tmp_path, tokenizer):
    recorder, journal, _ = _recorder(tmp_path, tokenizer, progress_seconds=0.5)
    tally = Tally(tokenizer)
    tally.parts = ["one two three"]
    long = _exchange(started=time.perf_counter() - 5, tally=tally, answered=True, stream=True)
    short = _exchange(started=time.perf_counter() + 60)  # admitted after the tick's horizon
    recorder.begin(long)
    recorder.begin(short)
    assert await recorder.progress() == 1
    tally.parts.append(" four five")
    assert await recorder.progress() == 1
    journal.sync()
    journal.close()
    # What a restart would publish for the long request: interrupted, with the tokens so far.
    replayed = UsageJournal(SegmentLog(tmp_path / "journal")).recover()
    events = {eid: events_pb2.UsageRecorded.FromString(p) for eid, p in replayed}
    cut = events[long.event_id]
    assert cut.outcome == events_pb2.OUTCOME_INTERRUPTED and cut.http_status == 200
    assert cut.completion_tokens == tokenizer.count("up", "one two three four five")
    assert cut.prompt_tokens == tokenizer.count_chat("up", BODY["messages"])
    assert cut.token_source == events_pb2.TOKEN_SOURCE_ESTIMATED
    assert cut.key_id == "k" and cut.stream and cut.latency_ms >= 5000
    assert events[short.event_id].total_tokens == 0  # admitted, nothing known yet


async def test_a_cache_hit_records_its_tokens_says_so_and_spends_no_token_quota(tmp_path, tokenizer):
    charged: list[int] = []
    recorder, _journal, publisher = _recorder(
        tmp_path, tokenizer, on_tokens=lambda _quota, tokens: charged.append(tokens))
    hit = _exchange(target=None, answered=True, usage=Tokens(5, 6), cache_hit=True,
                    quota=object())
    recorder.record(hit)
    fresh = _exchange(answered=True, usage=Tokens(5, 6), quota=object())
    recorder.record(fresh)
    await recorder.drain(1)
    (_, hit_event), (_, fresh_event) = publisher.sent
    assert hit_event.cache_hit and not fresh_event.cache_hit
    assert (hit_event.prompt_tokens, hit_event.completion_tokens) == (5, 6)
    assert hit_event.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert (hit_event.provider, hit_event.attempts) == ("", 0)  # no provider was called
    assert charged == [0, 11]  # the rate limits' tokens: none for the hit


def test_a_batch_holds_the_journaled_events_as_they_are_and_their_trace_parents():
    events = [events_pb2.UsageRecorded(event_id=f"e{i}", request_id=f"r{i}", prompt_tokens=i)
              for i in range(3)]
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    records = [Record(e.event_id, e.SerializeToString(),
                      {"traceparent": parent} if i == 1 else None) for i, e in enumerate(events)]
    batch = events_pb2.UsageBatch.FromString(encode_batch("b-1", records))
    assert batch.batch_id == "b-1"
    assert list(batch.records) == events
    assert dict(batch.traceparents) == {"e1": parent}
