"""The router's side of memory against a fake MemoryService client: BuildContext's messages replace
the client's (Switchboard's own fields never reach the provider), the chunks used are named in a
header, and the turn stored is what the client received, streamed text and tool calls included,
under the usage event id; a streamed turn is journaled as it goes, so one a crash cut is stored at
the next start (once, however often the replay runs) with the part streamed so far."""

from __future__ import annotations

import asyncio
import shutil

import orjson
import pytest
from google.protobuf.struct_pb2 import ListValue
import stamina
from switchboard.events.v1 import events_pb2
from switchboard.memory.v1 import memory_pb2
from switchboard_common.journal import SegmentLog

from switchboard_router.codecs import sse
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, RequestContext
from switchboard_router.journal import UsageJournal
from switchboard_router.remembering import SOURCES_HEADER, Memory, MemoryUnavailable

CALLER = Caller(key_id="k", tenant_id="t")


class FakeClient:
    def __init__(self) -> None:
        self.built: list[memory_pb2.BuildContextRequest] = []
        self.appended: list[memory_pb2.AppendTurnRequest] = []
        self.unreachable = 0  # this many appends fail as memory down would

    async def build_context(self, request):
        self.built.append(request)
        messages = ListValue()
        messages.extend([{"role": "system", "content": "[doc#0] Leave is 16 weeks."},
                         {"role": "user", "content": "earlier"}, *request.messages])
        return memory_pb2.BuildContextResponse(messages=messages, chunks=[
            memory_pb2.ContextChunk(chunk_id="doc#0", document_id="doc")])

    async def append_turn(self, request):
        if self.unreachable:
            self.unreachable -= 1
            raise MemoryUnavailable("memory is down")
        # Like memory: a turn id is stored once.
        if any(a.turn_id == request.turn_id for a in self.appended):
            return memory_pb2.AppendTurnResponse(turns=len(self.appended), already_stored=True)
        self.appended.append(request)
        return memory_pb2.AppendTurnResponse(stored_messages=2, turns=len(self.appended))


def chat(stream=False, **fields) -> ParsedRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream,
            "max_tokens": 50, **fields}
    return ParsedRequest(endpoint=Endpoint.CHAT, model="m", body=body, stream=stream,
                         max_tokens=50, session_id=fields.get("session_id"),
                         rag_collection=fields.get("rag_collection"))


def ctx() -> RequestContext:
    return RequestContext(request_id="r", key="sk", started=0.0)


async def test_the_context_replaces_the_messages_and_memorys_fields_are_taken_out():
    client = FakeClient()
    c = ctx()
    request, turn = await Memory(client).build(
        chat(session_id="s1", rag_collection="docs", rag_top_k=3), CALLER, c)
    assert set(request.body) == {"model", "messages", "stream", "max_tokens"}
    assert [m["content"] for m in request.body["messages"]] == [
        "[doc#0] Leave is 16 weeks.", "earlier", "hi"]
    sent = client.built[0]
    assert (sent.tenant_id, sent.session_id, sent.rag_collection, sent.rag_top_k,
            sent.reserve_output_tokens) == ("t", "s1", "docs", 3, 50)
    assert c.headers == [(SOURCES_HEADER, "doc#0")]
    assert turn is not None and turn.messages == [{"role": "user", "content": "hi"}]


async def test_rag_alone_stores_no_turn_and_other_endpoints_are_refused():
    _, turn = await Memory(FakeClient()).build(chat(rag_collection="docs"), CALLER, ctx())
    assert turn is None
    embed = ParsedRequest(endpoint=Endpoint.EMBEDDINGS, model="m", body={"input": "x"},
                          session_id="s1")
    with pytest.raises(Exception) as err:
        await Memory(FakeClient()).build(embed, CALLER, ctx())
    assert getattr(err.value, "code", None) == "not_implemented"


def chunk(delta, finish=None) -> bytes:
    return sse.encode(orjson.dumps({"choices": [{"index": 0, "delta": delta,
                                                 "finish_reason": finish}]}))


async def test_a_streamed_answer_is_stored_as_received_with_its_tool_calls():
    client = FakeClient()
    memory = Memory(client)
    request = chat(stream=True, session_id="s1")
    request, turn = await memory.build(request, CALLER, ctx())
    assert turn is not None
    recorder = memory.observer(turn, request, CALLER, ctx(), "evt-1")
    pieces = [chunk({"role": "assistant", "content": "Hel"}) + chunk({"content": "lo"}),
              chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                     "function": {"name": "get", "arguments": "{\"a\""}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "tool_calls"),
              sse.DONE]
    for piece in pieces:
        assert await recorder.piece(piece) is piece  # it only watches
    await recorder.end(True)
    stored = client.appended[0]
    assert (stored.turn_id, stored.session_id, stored.tenant_id, stored.outcome) == (
        "evt-1", "s1", "t", memory_pb2.TURN_OUTCOME_COMPLETE)
    answer = dict(stored.answer)
    assert answer["content"] == "Hello"
    assert answer["tool_calls"][0]["function"]["arguments"] == "{\"a\": 1}"


async def test_an_answer_cut_by_the_client_is_stored_off_the_request_task():
    client = FakeClient()
    memory = Memory(client)
    request, turn = await memory.build(chat(session_id="s1"), CALLER, ctx())
    assert turn is not None
    recorder = memory.observer(turn, request, CALLER, ctx(), "evt-2")
    await recorder.piece(orjson.dumps({"choices": [{"index": 0, "message": {
        "role": "assistant", "content": "partial", "refusal": None}}]}))
    await recorder.end(False)
    assert client.appended == []  # not yet: a task of its own
    await memory.drain()
    await asyncio.sleep(0)
    assert client.appended[0].outcome == memory_pb2.TURN_OUTCOME_CLIENT_ABORT
    assert dict(client.appended[0].answer) == {"role": "assistant", "content": "partial"}


async def test_chunks_a_guardrail_screens_out_are_left_out_of_a_rebuilt_context():
    client = FakeClient()
    seen: list[list[str]] = []

    async def screen(texts: list[str]) -> set[int]:
        seen.append(texts)
        return {0}

    c = ctx()
    await Memory(client).build(chat(rag_collection="docs"), CALLER, c, screen)
    assert seen == [[""]] and len(client.built) == 2
    assert list(client.built[1].exclude_chunk_ids) == ["doc#0"]


def _journal(path) -> UsageJournal:
    journal = UsageJournal(SegmentLog(path, prefix="usage", flush_seconds=0.001))
    journal.recover()
    return journal


def _reopened(journal: UsageJournal) -> UsageJournal:
    """The journal as the next start reads it: what a kill -9 after the last write leaves."""
    journal.sync(5)
    journal.close()
    return _journal(journal.directory)


async def _streaming(memory: Memory, turn_id: str):
    request, turn = await memory.build(chat(stream=True, session_id="s1"), CALLER, ctx())
    assert turn is not None
    return memory.observer(turn, request, CALLER, ctx(), turn_id)


async def _replayed(memory: Memory) -> None:
    assert memory._replaying is not None
    await memory._replaying


async def test_a_stream_cut_by_a_crash_is_stored_at_the_next_start_once(tmp_path):
    journal = _journal(tmp_path / "j")
    client = FakeClient()
    memory = Memory(client, journal=journal, snapshot_seconds=60.0)
    recorder = await _streaming(memory, "evt-cut")
    await recorder.piece(chunk({"role": "assistant", "content": ""}))  # nothing to keep yet
    assert journal.unstored_turns() == []
    await recorder.piece(chunk({"content": "Hel"}))  # the first text: journaled at once
    await recorder.piece(chunk({"content": "lo"}))  # within the snapshot interval: not yet
    # The router dies here: no end(), no append.
    _reopened(journal).close()
    assert client.appended == []
    shutil.copytree(tmp_path / "j", tmp_path / "before-replay")

    # The next start stores it; a start from the journal as it was before that replay (as if the
    # first had crashed before writing that memory has it) sends it again: memory keeps it once.
    for directory in (tmp_path / "j", tmp_path / "before-replay"):
        restarted = _journal(directory)
        memory = Memory(client, journal=restarted)
        memory.replay(restarted.unstored_turns())
        await _replayed(memory)
        assert _reopened(restarted).unstored_turns() == []
    (stored,) = client.appended
    assert (stored.turn_id, stored.session_id, stored.outcome) == (
        "evt-cut", "s1", memory_pb2.TURN_OUTCOME_INTERRUPTED)
    assert dict(stored.answer) == {"role": "assistant", "content": "Hel"}
    assert [dict(m) for m in stored.messages] == [{"role": "user", "content": "hi"}]


async def test_a_stored_turn_leaves_the_journal(tmp_path):
    journal = _journal(tmp_path)
    client = FakeClient()
    memory = Memory(client, journal=journal, snapshot_seconds=0.0)
    recorder = await _streaming(memory, "evt-done")
    await recorder.piece(chunk({"content": "all of it"}))
    assert [turn_id for turn_id, _ in journal.unstored_turns()] == ["evt-done"]
    await recorder.end(True)
    assert client.appended[0].outcome == memory_pb2.TURN_OUTCOME_COMPLETE
    assert _reopened(journal).unstored_turns() == []


async def test_a_turn_memory_could_not_take_waits_in_the_journal_as_it_ended(tmp_path):
    stamina.set_testing(True, attempts=5)  # retries without the waits
    try:
        journal = _journal(tmp_path)
        client = FakeClient()
        client.unreachable = 1
        memory = Memory(client, journal=journal)
        recorder = await _streaming(memory, "evt-later")
        await recorder.piece(chunk({"content": "whole answer"}))
        await recorder.end(True)
        assert client.appended == []
        (waiting,) = (journal := _reopened(journal)).unstored_turns()
        client.unreachable = 2  # still down at the next start, then back
        restarted = Memory(client, journal=journal)
        restarted.replay([waiting])
        await _replayed(restarted)
    finally:
        stamina.set_testing(False)
    (stored,) = client.appended
    assert stored.outcome == memory_pb2.TURN_OUTCOME_COMPLETE
    assert dict(stored.answer)["content"] == "whole answer"
    assert _reopened(journal).unstored_turns() == []


async def test_a_unary_answer_is_journaled_before_the_client_has_it_until_memory_does(tmp_path):
    """A crash between sending the whole answer and AppendTurn: the next start stores it."""
    journal = _journal(tmp_path)
    client = FakeClient()
    memory = Memory(client, journal=journal)
    request, turn = await memory.build(chat(session_id="s1"), CALLER, ctx())
    assert turn is not None
    recorder = memory.observer(turn, request, CALLER, ctx(), "evt-unary")
    await recorder.piece(orjson.dumps({"choices": [{"index": 0, "message": {
        "role": "assistant", "content": "whole"}}]}))
    (pending,) = journal.unstored_turns()
    assert pending[0] == "evt-unary"
    stored = memory_pb2.AppendTurnRequest.FromString(pending[1])
    assert stored.outcome == memory_pb2.TURN_OUTCOME_INTERRUPTED  # it may not have reached the client
    assert stored.answer["content"] == "whole"
    await recorder.end(True)
    assert journal.unstored_turns() == []


async def test_an_unstored_turn_outlives_the_segments_trimmed_after_it(tmp_path):
    journal = UsageJournal(SegmentLog(tmp_path, prefix="usage", flush_seconds=0.001,
                                      segment_bytes=4096))
    journal.recover()
    memory = Memory(FakeClient(), journal=journal, snapshot_seconds=0.0)
    recorder = await _streaming(memory, "evt-old")
    await recorder.piece(chunk({"content": "kept"}))
    journal.sync(5)
    (first_segment,) = journal._log.segments()
    for i in range(200):  # usage records enough for several new segments, older ones deleted
        journal.ended(f"e{i}", events_pb2.UsageRecorded(event_id=f"e{i}", request_id="r" * 100)
                      .SerializeToString())
        journal.acked([f"e{i}"])
        await asyncio.sleep(0)
    journal.sync(5)
    assert first_segment not in journal._log.segments()  # trimmed, yet:
    (turn_id, payload), = _reopened(journal).unstored_turns()
    assert turn_id == "evt-old"
    assert dict(memory_pb2.AppendTurnRequest.FromString(payload).answer)["content"] == "kept"
