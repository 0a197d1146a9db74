"""The typed twins of /v1/messages and /v1/responses: a typed request is exactly the JSON body the
route takes, and the route's answers (whole and each streamed event) survive the typed messages
whole, still valid by the SDKs' own types."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from switchboard.gateway.v1 import gateway_pb2 as pb
from switchboard_common.errors import RateLimited, UpstreamError

from switchboard_router import typed, typed_inbound
from switchboard_router.codecs.sse import DONE, encode
from switchboard_router.gateway import JSON, SSE
from switchboard_router.inbound import messages, messages_answer, responses
from switchboard_router.inbound.responses_answer import ResponsesStream, from_chat, shell

SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
          "required": ["city"]}


def _message_request() -> pb.MessageRequest:
    request = pb.MessageRequest(
        model="m", max_tokens=64, temperature=0.5, stop_sequences=["END"],
        system=[pb.ContentBlock(type="text", text="Be brief.")],
        messages=[
            pb.MessageParam(role="user", content=[
                pb.ContentBlock(type="text", text="Weather?"),
                pb.ContentBlock(type="image", source=pb.ImageSource(
                    type="base64", media_type="image/png", data="iVBORw0KGgo="))]),
            pb.MessageParam(role="assistant", content=[
                pb.ContentBlock(type="tool_use", id="toolu_1", name="weather")]),
            pb.MessageParam(role="user", content=[pb.ContentBlock(
                type="tool_result", tool_use_id="toolu_1", is_error=False,
                content=[pb.ContentBlock(type="text", text="sunny")])])],
        tools=[pb.MessageTool(name="weather", description="Today's weather")],
        tool_choice=pb.MessageToolChoice(type="tool", name="weather"),
        metadata=pb.MessageMetadata(user_id="u-1"))
    request.messages[1].content[0].input.update({"city": "Paris", "days": 3})
    request.tools[0].input_schema.update(SCHEMA)
    request.extra_body.update({"service_tier": "auto"})
    return request


def test_a_typed_message_request_is_the_exact_body_of_the_route():
    body = orjson.loads(typed_inbound.body(_message_request(), stream=True))
    assert body == {
        "model": "m", "max_tokens": 64, "temperature": 0.5, "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "weather",
                                               "input": {"city": "Paris", "days": 3}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "is_error": False,
                                          "content": [{"type": "text", "text": "sunny"}]}]}],
        "tools": [{"name": "weather", "description": "Today's weather", "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "weather"}, "metadata": {"user_id": "u-1"},
        "service_tier": "auto", "stream": True}
    assert isinstance(body["messages"][1]["content"][0]["input"]["days"], int)  # not 3.0
    chat = messages.to_chat(body)  # the route takes it as it is
    arguments = chat["messages"][2]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(arguments) == {"city": "Paris", "days": 3}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_the_rpc_says_whether_it_streams_whatever_extra_body_says():
    request = pb.MessageRequest(model="m", max_tokens=1)
    request.extra_body.update({"stream": True, "top_k": 3})
    body = orjson.loads(typed_inbound.body(request, stream=False))
    assert body["stream"] is False and body["top_k"] == 3  # top_k reaches the route, which refuses it


def test_a_typed_response_request_is_the_exact_body_of_the_route():
    request = pb.ResponseRequest(
        model="m", instructions="Be brief.", max_output_tokens=50, store=True,
        previous_response_id="resp_1", metadata={"team": "a"},
        input=[pb.ResponseItem(type="message", role="user",
                               content=[pb.ResponseContent(type="input_text", text="Weather?")]),
               pb.ResponseItem(type="function_call", call_id="call_1", name="weather",
                               arguments='{"city":"Paris"}'),
               pb.ResponseItem(type="function_call_output", call_id="call_1", output="sunny")],
        tools=[pb.ResponseTool(type="function", name="weather")])
    request.tools[0].parameters.update(SCHEMA)
    request.tool_choice.string_value = "auto"
    request.text.update({"format": {"type": "text"}})
    body = orjson.loads(typed_inbound.body(request, stream=False))
    assert body == {
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "store": True,
        "previous_response_id": "resp_1", "metadata": {"team": "a"},
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "Weather?"}]},
                  {"type": "function_call", "call_id": "call_1", "name": "weather",
                   "arguments": '{"city":"Paris"}'},
                  {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
        "tools": [{"type": "function", "name": "weather", "parameters": SCHEMA}],
        "tool_choice": "auto", "text": {"format": {"type": "text"}}, "stream": False}
    chat = responses.to_chat(body, storing=True)
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "tool"]


def _no_nulls(value):
    """What proto3 cannot tell from unset: nulls and empty lists (nothing else is lost)."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


def _chunks() -> bytes:
    def chunk(delta, finish=None):
        return encode(orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                    "model": "m", "choices": [{"index": 0, "delta": delta,
                                                               "finish_reason": finish}]}))
    usage = encode(orjson.dumps({"id": "c", "choices": [], "usage": CHAT["usage"]}))
    return (chunk({"role": "assistant", "content": "Hel"}) + chunk({"content": "lo"})
            + chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "weather", "arguments": '{"ci'}}]})
            + chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "P"}'}}]},
                    "tool_calls") + usage + DONE)


def _events(data: bytes) -> list[dict]:
    return [orjson.loads(block.split(b"\ndata: ")[1]) for block in data.strip().split(b"\n\n")]


def test_a_message_and_its_stream_events_survive_the_typed_messages():
    whole = messages_answer.from_chat(CHAT, "m")
    typed_whole = typed.to_message(whole, pb.Message)
    assert typed_whole.content[1].input["city"] == "Paris" and typed_whole.usage.input_tokens == 11
    assert _no_nulls(typed.to_json(typed_whole)) == _no_nulls(whole)
    Message.model_validate(typed.to_json(typed_whole))

    events = _events(messages_answer.MessagesStream("m", 5).feed(_chunks()))
    adapter = TypeAdapter(RawMessageStreamEvent)
    for event in events:
        back = typed.to_json(typed.to_message(event, pb.MessageStreamEvent))
        assert _no_nulls(back) == _no_nulls(event)
        if event["type"] not in ("ping", "message_start"):  # message_start's content is []
            adapter.validate_python(back)
    assert [e["type"] for e in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]


def test_a_response_and_its_stream_events_survive_the_typed_messages():
    skeleton = shell({"model": "m", "input": "x", "metadata": {"team": "a"}}, store=True)
    whole = from_chat(CHAT, skeleton)
    typed_whole = typed.to_message(whole, pb.Response)
    assert typed_whole.output[1].call_id == "call_1" and typed_whole.usage.total_tokens == 18
    assert typed_whole.extra_fields["created_at"] == whole["created_at"]
    assert _no_nulls(typed.to_json(typed_whole)) == _no_nulls(whole)

    events = _events(ResponsesStream(skeleton).feed(_chunks()))
    adapter = TypeAdapter(ResponseStreamEvent)
    for event in events:
        back = typed.to_json(typed.to_message(event, pb.ResponseStreamEvent))
        assert _no_nulls(back) == _no_nulls(event)
        adapter.validate_python(event)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    completed = typed.to_message(events[-1], pb.ResponseStreamEvent).response
    assert completed.status == "completed" and completed.usage.output_tokens_details.reasoning_tokens == 0
    assert completed.usage.output_tokens_details.HasField("reasoning_tokens")  # 0, but sent


async def _pieces(*pieces: tuple[str, bytes]) -> AsyncGenerator[tuple[str, bytes], None]:
    for piece in pieces:
        yield piece


async def test_answers_are_the_whole_json_or_each_event_split_across_reads():
    whole = messages_answer.from_chat(CHAT, "m")
    out = [m async for m in typed_inbound.answers(_pieces((JSON, orjson.dumps(whole))), pb.Message)]
    assert [m.id for m in out] == [whole["id"]]

    data = messages_answer.MessagesStream("m", 5).feed(_chunks())
    cut = len(data) // 2  # an event split across two reads
    out = [e async for e in typed_inbound.answers(
        _pieces((SSE, data[:cut]), (SSE, data[cut:])), pb.MessageStreamEvent)]
    assert [e.type for e in out] == [e["type"] for e in _events(data)]


@pytest.mark.parametrize("event, cls", [
    ({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, RateLimited),
    ({"type": "error", "error": {"type": "api_error", "message": "interleaved"}}, UpstreamError),
    ({"error": {"type": "rate_limit_error", "message": "slow down", "code": "rate_limit_exceeded"}},
     RateLimited),
])
async def test_an_error_event_is_raised_as_the_error_it_reports(event, cls):
    data = encode(orjson.dumps({"type": "ping"}), "ping") + encode(orjson.dumps(event), "error")
    received = []
    with pytest.raises(cls) as info:
        async for e in typed_inbound.answers(_pieces((SSE, data)), pb.MessageStreamEvent):
            received.append(e.type)
    assert received == ["ping"] and info.value.message == event["error"]["message"]
