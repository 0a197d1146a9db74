"""ChatCompletionRequest takes OpenAI's Chat Completions body as clients send it, plus our fields."""

from __future__ import annotations

import copy
import json

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from switchboard.gateway.v1 import gateway_pb2

REQUEST = gateway_pb2.ChatCompletionRequest.DESCRIPTOR
FD = FieldDescriptor

# OpenAI's field -> the JSON kind it takes (platform.openai.com/docs/api-reference/chat/create).
OPENAI_FIELDS = {
    "model": "string", "messages": "array", "temperature": "number", "top_p": "number",
    "n": "integer", "stream": "boolean", "stop": "any", "max_tokens": "integer",
    "max_completion_tokens": "integer", "presence_penalty": "number", "frequency_penalty": "number",
    "logit_bias": "object", "logprobs": "boolean", "top_logprobs": "integer", "user": "string",
    "seed": "integer", "tools": "array", "tool_choice": "any", "parallel_tool_calls": "boolean",
    "response_format": "object", "stream_options": "object", "metadata": "object", "store": "boolean",
    "reasoning_effort": "string", "modalities": "array", "service_tier": "string",
}
# The AILB request shapes (seeds/002): memory by session, RAG over a collection.
AILB_FIELDS = {"session_id": "string", "rag_collection": "string", "rag_top_k": "integer"}

_INTEGERS = {FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_UINT32, FD.TYPE_UINT64, FD.TYPE_SINT32, FD.TYPE_SINT64}


def _json_kind(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.full_name == "google.protobuf.Value":
        return "any"
    if field.is_repeated:
        return "object" if field.message_type and field.message_type.GetOptions().map_entry else "array"
    if field.type == FD.TYPE_MESSAGE:
        return "object"
    return {FD.TYPE_STRING: "string", FD.TYPE_BOOL: "boolean", FD.TYPE_DOUBLE: "number",
            FD.TYPE_FLOAT: "number"}.get(field.type, "integer" if field.type in _INTEGERS else "?")


@pytest.mark.parametrize("name, kind", [*OPENAI_FIELDS.items(), *AILB_FIELDS.items()])
def test_field_exists_and_takes_its_json_kind(name, kind):
    field = REQUEST.fields_by_name.get(name)
    assert field is not None, f"ChatCompletionRequest has no {name}"
    assert _json_kind(field) == kind


@pytest.mark.parametrize("name", [n for n, k in {**OPENAI_FIELDS, **AILB_FIELDS}.items()
                                  if k in ("string", "number", "integer", "boolean") and n != "model"])
def test_optional_scalars_keep_presence(name):
    # temperature=0 or stream=false must reach the provider, not vanish as proto3 defaults: the
    # provider's own defaults (temperature 1, n 1) differ from zero. (`model` is required.)
    assert REQUEST.fields_by_name[name].has_presence


def test_our_extensions_are_numbered_apart_from_openai_fields():
    # OpenAI adds fields often; ours sit at 100+ so theirs can keep being added below.
    assert all(REQUEST.fields_by_name[n].number >= 100 for n in AILB_FIELDS)
    assert all(REQUEST.fields_by_name[n].number < 100 for n in OPENAI_FIELDS)


FULL_REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "alice", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ],
    "temperature": 0, "top_p": 0.9, "n": 1, "stream": True, "stop": ["\n\n", "END"],
    "max_tokens": 256, "max_completion_tokens": 512, "presence_penalty": 0.5,
    "frequency_penalty": -0.5, "logit_bias": {"50256": -100}, "logprobs": True, "top_logprobs": 3,
    "user": "user-123", "seed": 42,
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather by city", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}}},
    "stream_options": {"include_usage": True}, "metadata": {"team": "search"}, "store": False,
    "reasoning_effort": "low", "modalities": ["text"], "service_tier": "auto",
    "session_id": "sess-1", "rag_collection": "handbook", "rag_top_k": 4,
}


def _parse(body: dict, **kwargs) -> gateway_pb2.ChatCompletionRequest:
    return json_format.ParseDict(body, gateway_pb2.ChatCompletionRequest(), **kwargs)


def _dump(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_every_openai_and_ailb_field_round_trips():
    assert set(FULL_REQUEST) == set(OPENAI_FIELDS) | set(AILB_FIELDS)
    # proto3 JSON prints int64 as a string (research/envoy-edge.md); the value is kept.
    assert _dump(_parse(FULL_REQUEST)) == {**FULL_REQUEST, "seed": "42"}


def test_zero_and_false_survive():
    request = _parse({"model": "m", "temperature": 0, "stream": False, "n": 0})
    assert request.HasField("temperature") and request.HasField("stream") and request.HasField("n")
    assert not request.HasField("top_p")


def test_unknown_fields_are_ignored_on_request():
    body = copy.deepcopy(FULL_REQUEST)
    body["a_field_openai_adds_next_year"] = {"nested": [1, 2]}
    body["messages"][1]["cache_control"] = {"type": "ephemeral"}
    with pytest.raises(json_format.ParseError):
        _parse(body)
    request = json_format.Parse(json.dumps(body), gateway_pb2.ChatCompletionRequest(),
                                ignore_unknown_fields=True)
    assert _dump(request) == {**FULL_REQUEST, "seed": "42"}


@pytest.mark.parametrize("content, kind", [
    pytest.param("Hello!", "string_value", id="string"),
    pytest.param([{"type": "text", "text": "Describe"},
                  {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
                 "list_value", id="list of parts"),
    pytest.param(None, "null_value", id="null"),
])
def test_message_content_round_trips_through_value(content, kind):
    body = {"role": "user", "content": content}
    message = json_format.ParseDict(body, gateway_pb2.ChatMessage())
    assert message.HasField("content") and message.content.WhichOneof("kind") == kind
    assert _dump(message) == body


def test_absent_content_differs_from_null():
    message = json_format.ParseDict({"role": "assistant"}, gateway_pb2.ChatMessage())
    assert not message.HasField("content")
    assert "content" not in _dump(message)
