"""Anthropic Messages ⇄ Chat Completions: the request carried or refused field by field, and the
answers (whole and streamed) valid by the anthropic SDK's own types."""

from __future__ import annotations

import orjson
import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from pydantic import TypeAdapter
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.sse import DONE, encode
from switchboard_router.inbound import messages, messages_answer, native

EVENTS = TypeAdapter(RawMessageStreamEvent)
ERROR = TypeAdapter(ErrorResponse)


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
        if event["type"] == "ping":
            assert event == {"type": "ping"}
        elif event["type"] == "error":
            ERROR.validate_python(event)
        else:
            EVENTS.validate_python(event)  # the SDK's own event types
        out.append(event)
    return out


def test_a_full_request_maps_every_field():
    chat = messages.to_chat({
        "model": "gpt-4o-mini", "max_tokens": 99, "temperature": 0.5, "top_p": 0.9,
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "stream": True,
        "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "b"}],
        "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"},
                                              {"type": "tool_use", "id": "tu1", "name": "t", "input": {"x": 1}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "after"},
                {"type": "tool_result", "tool_use_id": "tu1", "content": "r", "is_error": True},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]}]})
    assert chat["messages"] == [
        {"role": "system", "content": "a\n\nb"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "tu1", "type": "function", "function": {"name": "t", "arguments": '{"x":1}'}}]},
        {"role": "tool", "tool_call_id": "tu1", "content": "Error: r"},
        {"role": "user", "content": [{"type": "text", "text": "after"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]}]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "t", "parameters": {"type": "object"}, "description": "d"}}]
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert (chat["max_tokens"], chat["stop"], chat["user"], chat["temperature"]) == (99, ["END"], "u1", 0.5)
    assert chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("extra, param", [
    ({"top_k": 5}, "top_k"), ({"nope": 1}, "nope"), ({"thinking": {"type": "enabled", "budget_tokens": 2048}},
                                                     "thinking"),
    ({"service_tier": "standard_only"}, "service_tier"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
     "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "bogus": 1}]}]},
     "messages.0.content.0.bogus"),
    ({"max_tokens": 0}, "max_tokens")])
def test_what_cannot_be_carried_is_refused_by_name(extra, param):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(InvalidRequest) as info:
        messages.to_chat(body)
    assert info.value.param == param


def test_count_tokens_body_has_no_max_tokens():
    chat = messages.to_chat({"model": "m", "messages": [{"role": "user", "content": "x"}]}, counting=True)
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(InvalidRequest):
        messages.to_chat({"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]},
                         counting=True)


def test_a_whole_answer_is_an_sdk_message():
    chat = {"id": "chatcmpl-9", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "let me see", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 2}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                  "prompt_tokens_details": {"cached_tokens": 6}}}
    out = Message.model_validate(messages_answer.from_chat(chat, "gpt-4o-mini"))
    assert out.id.startswith("msg_") and out.stop_reason == "tool_use"
    assert [b.type for b in out.content] == ["text", "tool_use"] and out.content[1].input == {"a": 2}
    assert (out.usage.input_tokens, out.usage.cache_read_input_tokens, out.usage.output_tokens) == (4, 6, 4)


def test_a_stream_of_text_then_tools():
    stream = messages_answer.MessagesStream("m", 0)
    data = b"".join([
        stream.feed(_chunk({"role": "assistant", "content": ""})),
        stream.feed(_chunk({"content": "Hi"}) + _chunk({"content": " there"})),
        stream.feed(_chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                            "function": {"name": "f", "arguments": ""}}]})),
        stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]})),
        stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': 1}'}}]})),
        stream.feed(_chunk({"tool_calls": [{"index": 1, "id": "c2", "type": "function",
                                            "function": {"name": "g", "arguments": "{}"}}]})),
        stream.feed(_chunk(finish="tool_calls")),
        stream.feed(_chunk(usage={"prompt_tokens": 7, "completion_tokens": 5}, choices=False)),
        stream.feed(DONE)])
    events = _events(data)
    kinds = [e["type"] for e in events]
    assert kinds == ["message_start", "ping",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert events[0]["message"]["usage"]["input_tokens"] == 1  # an estimate is never 0
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1, 2]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] == 5 and events[-2]["usage"]["input_tokens"] == 7
    assert stream.done


def test_interleaved_tool_calls_end_in_an_error_event_not_a_wrong_stream():
    stream = messages_answer.MessagesStream("m", 3)
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}
    stream.feed(_chunk({"tool_calls": [call]}))
    stream.feed(_chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g"}}]}))
    (event,) = _events(stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})))
    assert event["type"] == "error" and "interleaved" in event["error"]["message"]
    assert stream.done and stream.feed(DONE) == b""


def test_an_error_after_the_200_is_an_error_event():
    stream = messages_answer.MessagesStream("m", 3)
    stream.feed(_chunk({"content": "Hi"}))
    data = stream.feed(encode(orjson.dumps({"error": {"message": "boom", "type": "upstream_error"}})))
    (event,) = _events(data)
    assert event == {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    assert stream.feed(DONE) == b""  # nothing after the error


def test_error_types_follow_anthropics_statuses():
    assert [messages.error_type(s) for s in (400, 401, 402, 403, 404, 413, 429, 500, 502, 503, 529)] == [
        "invalid_request_error", "authentication_error", "billing_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error", "api_error", "api_error",
        "overloaded_error", "overloaded_error"]


def test_a_guardrails_block_mid_stream_stays_an_invalid_request_in_anthropics_shape():
    for feed in (messages_answer.MessagesStream("m", 3).feed, native.Errors.feed):
        data = feed(encode(orjson.dumps({"error": {"message": "blocked: pii", "code": "guardrail_blocked",
                                                   "type": "invalid_request_error"}})))
        (event,) = _events(data)
        assert event["error"] == {"type": "invalid_request_error", "message": "blocked: pii"}
    assert messages.stream_error({"type": "service_unavailable"})["type"] == "overloaded_error"
    assert messages.stream_error("junk") == {"type": "api_error", "message": ""}
