"""The router's side of memory against a fake MemoryService client: BuildContext's messages replace
the client's (Switchboard's own fields never reach the provider), the chunks used are named in a
header, and the turn stored is what the client received, streamed text and tool calls included,
under the usage event id."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from google.protobuf.struct_pb2 import ListValue
from switchboard.memory.v1 import memory_pb2

from switchboard_router.codecs import sse
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, RequestContext
from switchboard_router.remembering import SOURCES_HEADER, Memory

CALLER = Caller(key_id="k", tenant_id="t")


class FakeClient:
    def __init__(self) -> None:
        self.built: list[memory_pb2.BuildContextRequest] = []
        self.appended: list[memory_pb2.AppendTurnRequest] = []

    async def build_context(self, request):
        self.built.append(request)
        messages = ListValue()
        messages.extend([{"role": "system", "content": "[doc#0] Leave is 16 weeks."},
                         {"role": "user", "content": "earlier"}, *request.messages])
        return memory_pb2.BuildContextResponse(messages=messages, chunks=[
            memory_pb2.ContextChunk(chunk_id="doc#0", document_id="doc")])

    async def append_turn(self, request):
        self.appended.append(request)
        return memory_pb2.AppendTurnResponse(stored_messages=2, turns=1)


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
