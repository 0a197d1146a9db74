"""OpenAI Responses ⇄ Chat Completions: the request carried or refused field by field, and the
answers (whole and streamed) valid by the openai SDK's own types, strictly."""

from __future__ import annotations

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.sse import DONE, encode
from switchboard_router.inbound import responses, responses_answer

EVENTS = TypeAdapter(ResponseStreamEvent)


def _chunk(delta=None, finish=None, usage=None, choices=True) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []}
    if usage:
        body["usage"] = usage
    return encode(orjson.dumps(body))


def _events(data: bytes) -> list[dict]:
    out = []
    for block in data.decode().strip().split("\n\n"):
        name, payload = block.split("\n")
        event = orjson.loads(payload.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        EVENTS.validate_python(event, strict=False)
        out.append(event)
    return out


def test_input_items_become_chat_messages():
    chat = responses.to_chat({
        "model": "m", "instructions": "be kind", "max_output_tokens": 50, "stream": True,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        "tool_choice": {"type": "function", "name": "f"}, "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "input": [
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                         {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "calling", "annotations": []}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]}]})
    assert chat["messages"] == [
        {"role": "system", "content": "be kind"}, {"role": "system", "content": "dev"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"}]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}, "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert (chat["max_completion_tokens"], chat["reasoning_effort"]) == (50, "low")
    assert chat["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "s", "schema": {"type": "object"}}}
    assert chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("extra, param", [
    ({"store": True}, "store"), ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"), ({"background": True}, "background"),
    ({"include": ["reasoning.encrypted_content"]}, "include"), ({"whatever": 1}, "whatever"),
    ({"tools": [{"type": "file_search"}]}, "tools[0]"), ({"truncation": "auto"}, "truncation"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type")])
def test_what_is_not_kept_or_carried_is_refused_by_name(extra, param):
    with pytest.raises(InvalidRequest) as info:
        responses.to_chat({"model": "m", "input": "x", **extra})
    assert info.value.param == param


def test_a_whole_answer_is_an_sdk_response():
    chat = {"id": "chatcmpl-9", "choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": "cut", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                  "prompt_tokens_details": {"cached_tokens": 6},
                  "completion_tokens_details": {"reasoning_tokens": 1}}}
    body = {"model": "m", "input": "x"}
    out = Response.model_validate(responses_answer.from_chat(chat, responses_answer.shell(body)))
    assert out.output_text == "cut" and out.status == "incomplete"
    assert out.incomplete_details.reason == "max_output_tokens"
    assert out.output[1].type == "function_call" and out.output[1].call_id == "c1"
    assert (out.usage.input_tokens_details.cached_tokens, out.usage.output_tokens_details.reasoning_tokens) == (6, 1)


def test_a_stream_adds_each_item_before_its_content():
    stream = responses_answer.ResponsesStream(responses_answer.shell({"model": "m", "input": "x"}))
    data = b"".join([
        stream.feed(_chunk({"role": "assistant", "content": "Hi"})),
        stream.feed(_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}]})),
        stream.feed(_chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]})),
        stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})),
        stream.feed(_chunk(finish="tool_calls")),
        stream.feed(_chunk(usage={"prompt_tokens": 7, "completion_tokens": 5}, choices=False)),
        stream.feed(DONE)])
    events = _events(data)
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = Response.model_validate(events[-1]["response"])
    assert [i.type for i in final.output] == ["message", "function_call", "function_call"]
    assert final.output[1].arguments == "{}" and final.usage.total_tokens == 12


def test_an_error_after_the_200_is_passed_on_for_the_sdk_to_raise():
    stream = responses_answer.ResponsesStream(responses_answer.shell({"model": "m", "input": "x"}))
    stream.feed(_chunk({"content": "Hi"}))
    error = {"error": {"message": "boom", "type": "upstream_error", "param": None, "code": None}}
    data = stream.feed(encode(orjson.dumps(error)))
    assert orjson.loads(data.split(b"data: ", 1)[1]) == error and stream.done
