"""Request validation: OpenAI-style messages and codes that name the param; unknown fields kept."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common.errors import InvalidRequest

from switchboard_router.domain import Endpoint
from switchboard_router.validation import parse_json, validate

MSG = [{"role": "user", "content": "hi"}]


def _error(endpoint: Endpoint, body: dict) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate(endpoint, body)
    return info.value


def test_malformed_json():
    for data in (b"{nope", b"", b"[1, 2]"):
        with pytest.raises(InvalidRequest) as info:
            parse_json(data)
        assert info.value.code == "invalid_json"
    assert "could not parse the JSON body" in _parse_error(b"{nope")


def _parse_error(data: bytes) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse_json(data)
    return info.value.message


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"messages": MSG}, "model", "missing_required_parameter"),
    ({"model": 5, "messages": MSG}, "model", "invalid_type"),
    ({"model": "m"}, "messages", "missing_required_parameter"),
    ({"model": "m", "messages": {}}, "messages", "invalid_type"),
    ({"model": "m", "messages": []}, "messages", "empty_array"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]", "invalid_type"),
    ({"model": "m", "messages": [*MSG, {"content": "x"}]}, "messages[1].role", "missing_required_parameter"),
    ({"model": "m", "messages": [{"role": 1}]}, "messages[0].role", "invalid_type"),
    ({"model": "m", "messages": [{"role": "robot"}]}, "messages[0].role", "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content", "invalid_type"),
    ({"model": "m", "messages": MSG, "stream": 1}, "stream", "invalid_type"),
    ({"model": "m", "messages": MSG, "n": 0}, "n", "integer_below_min_value"),
    ({"model": "m", "messages": MSG, "n": True}, "n", "invalid_type"),
    ({"model": "m", "messages": MSG, "max_tokens": "9"}, "max_tokens", "invalid_type"),
    ({"model": "m", "messages": MSG, "stream_options": {"include_usage": True}}, "stream_options",
     "invalid_value"),
    ({"model": "m", "messages": MSG, "stream": True, "stream_options": {"include_usage": "y"}},
     "stream_options.include_usage", "invalid_type"),
    ({"model": "m", "messages": MSG, "session_id": 3}, "session_id", "invalid_type"),
])
def test_chat_errors_name_the_param(body, param, code):
    err = _error(Endpoint.CHAT, body)
    assert (err.param, err.code, err.http_status) == (param, code, 400)


def test_valid_chat_keeps_everything():
    body = {"model": "m", "messages": MSG, "stream": True, "n": 2, "max_completion_tokens": 5,
            "stream_options": {"include_usage": True}, "session_id": "s1", "brand_new": [1]}
    req = validate(Endpoint.CHAT, body)
    assert (req.model, req.stream, req.n, req.max_tokens, req.include_usage, req.session_id) == (
        "m", True, 2, 5, True, "s1")
    assert req.body is body


@pytest.mark.parametrize(("endpoint", "body", "param"), [
    (Endpoint.COMPLETIONS, {"model": "m"}, "prompt"),
    (Endpoint.COMPLETIONS, {"model": "m", "prompt": 3}, "prompt"),
    (Endpoint.EMBEDDINGS, {"model": "m"}, "input"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": ""}, "input"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    (Endpoint.MODERATIONS, {}, "input"),
    (Endpoint.MODERATIONS, {"input": "x", "model": 1}, "model"),
])
def test_other_endpoints(endpoint, body, param):
    assert _error(endpoint, body).param == param


def test_moderations_model_is_optional():
    assert validate(Endpoint.MODERATIONS, {"input": "x"}).model == ""


# --- Documented fields, checked as OpenAI's spec types them (openai_fields.json) -------------------

def chat(**fields) -> dict:
    return {"model": "m", "messages": MSG, **fields}


@pytest.mark.parametrize(("fields", "param", "code"), [
    ({"temperature": "hot"}, "temperature", "invalid_type"),  # was forwarded as sent
    ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"temperature": -0.1}, "temperature", "decimal_below_min_value"),
    ({"top_p": 1.5}, "top_p", "decimal_above_max_value"),
    ({"presence_penalty": -3}, "presence_penalty", "decimal_below_min_value"),
    ({"frequency_penalty": "2"}, "frequency_penalty", "invalid_type"),
    ({"seed": "42"}, "seed", "invalid_type"),
    ({"seed": 2**63}, "seed", "integer_above_max_value"),
    ({"user": 7}, "user", "invalid_type"),
    ({"n": 100_000}, "n", "integer_above_max_value"),  # streamed 145 MB from the local model
    ({"n": 1.5}, "n", "invalid_type"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"max_completion_tokens": 2**40}, "max_completion_tokens", "integer_above_max_value"),
    ({"top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
    ({"logprobs": 5}, "logprobs", "invalid_type"),
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256", "integer_above_max_value"),
    ({"logit_bias": {str(i): 1 for i in range(1025)}}, "logit_bias", "object_above_max_properties"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ({"stop": 5}, "stop", "invalid_type"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}] * 129}, "tools",
     "array_above_max_length"),
    ({"tools": [{"function": {"name": "f"}}]}, "tools[0].type", "missing_required_parameter"),
    ({"tools": [{"type": "function", "function": {"name": 3}}]}, "tools[0].function.name",
     "invalid_type"),
    ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ({"tool_choice": {"type": "function"}}, "tool_choice.function", "missing_required_parameter"),
    ({"response_format": "json"}, "response_format", "invalid_type"),
    ({"response_format": {"type": "regex"}}, "response_format.type", "invalid_value"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema",
     "missing_required_parameter"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}},
     "response_format.json_schema.schema", "invalid_type"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", "invalid_value"),
    ({"modalities": ["video"]}, "modalities[0]", "invalid_value"),
    ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
    ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage",
     "invalid_type"),
    ({"rag_top_k": 10_000}, "rag_top_k", "integer_above_max_value"),
])
def test_documented_chat_fields_are_checked(fields, param, code):
    err = _error(Endpoint.CHAT, chat(**fields))
    assert (err.param, err.code, err.http_status) == (param, code, 400), err.message
    # OpenAI's "Invalid value: 'x'. Supported values are: ..." names the field in `param` only.
    assert param in err.message or code == "invalid_value"


def test_openai_words_for_a_bad_type_and_a_range():
    assert _error(Endpoint.CHAT, chat(temperature="hot")).message == (
        "Invalid type for 'temperature': expected a decimal, but got a string instead.")
    assert _error(Endpoint.CHAT, chat(n=129)).message == (
        "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead.")


@pytest.mark.parametrize("fields", [
    {"temperature": None, "top_p": None, "n": None, "stop": None, "seed": None, "stream": None},
    {"temperature": 0, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2.0, "n": 128},
    {"n": 2.0},  # an integer to JSON Schema (and what the typed gRPC twin sends)
    {"stop": "END", "logit_bias": {"50256": -100}, "seed": -(2**63), "user": "u-1"},
    {"response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True, "schema": {"type": "object", "properties": {}}}}},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
     "tool_choice": {"type": "function", "function": {"name": "f"}}, "parallel_tool_calls": False},
    {"tool_choice": "required", "audio": {"voice": "alloy", "format": "mp3"}, "modalities": ["text"]},
    {"brand_new_field": {"anything": [1, "x", None]}},  # unknown fields are the provider's to judge
])
def test_valid_documented_fields_pass_and_stay(fields):
    body = chat(**fields)
    assert validate(Endpoint.CHAT, body).body == {"model": "m", "messages": MSG, **fields}


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"model": "m", "messages": MSG * 2049}, "messages", "array_above_max_length"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}] * 2049}]},
     "messages[0].content", "array_above_max_length"),
    ({"model": "m", "messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]",
     "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"text": "hi"}]}]},
     "messages[0].content[0].type", "missing_required_parameter"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "messages[0].content[0].text", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024 + 1)}]},
     "messages[0].content", "string_above_max_length"),
])
def test_messages_are_bounded(body, param, code):
    err = _error(Endpoint.CHAT, body)
    assert (err.param, err.code) == (param, code), err.message


@pytest.mark.parametrize(("prompt", "param", "code"), [
    ([None], "prompt[0]", "invalid_type"),  # these three answered 500 on the local model
    (["a", 5], "prompt[1]", "invalid_type"),
    ([1, 2**33], "prompt[1]", "invalid_value"),
    ([1, -1], "prompt[1]", "invalid_value"),
    ([1, "a"], "prompt[1]", "invalid_type"),
    ([[1], []], "prompt[1]", "empty_array"),
    ([[1], "a"], "prompt[1]", "invalid_type"),
    (["a"] * 2049, "prompt", "array_above_max_length"),
    ([1] * ((1 << 20) + 1), "prompt", "array_above_max_length"),
    ({"text": "a"}, "prompt", "invalid_type"),
])
def test_completion_prompts_are_checked(prompt, param, code):
    err = _error(Endpoint.COMPLETIONS, {"model": "m", "prompt": prompt})
    assert (err.param, err.code) == (param, code), err.message


@pytest.mark.parametrize("fields", [
    {"prompt": None},  # OpenAI's spec: nullable, the model starts from <|endoftext|>
    {"prompt": [], "max_tokens": 0},  # completions take max_tokens 0 (chat does not)
    {"prompt": [1000000000]},  # a token id the gateway cannot judge; the model may refuse it
    {"prompt": [[1, 2], [3]], "echo": True, "best_of": 2, "logprobs": 5, "suffix": None},
])
def test_completion_requests_openai_accepts(fields):
    validate(Endpoint.COMPLETIONS, {"model": "m", **fields})


@pytest.mark.parametrize(("endpoint", "body", "param", "code"), [
    (Endpoint.COMPLETIONS, {"model": "m", "prompt": "x", "logprobs": 6}, "logprobs",
     "integer_above_max_value"),
    (Endpoint.COMPLETIONS, {"model": "m", "prompt": "x", "echo": "yes"}, "echo", "invalid_type"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": "x", "dimensions": 2147483648}, "dimensions",
     "integer_above_max_value"),  # grew the router to 23 GB on the local model
    (Endpoint.EMBEDDINGS, {"model": "m", "input": ["x"] * 2049}, "input", "array_above_max_length"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": [True]}, "input[0]", "invalid_type"),
    (Endpoint.EMBEDDINGS, {"model": "m", "input": "x", "user": 1}, "user", "invalid_type"),
    (Endpoint.MODERATIONS, {"input": [3]}, "input[0]", "invalid_type"),
    (Endpoint.MODERATIONS, {"input": [{"type": "text", "text": 3}]}, "input[0].text",
     "invalid_type"),
    (Endpoint.MODERATIONS, {"input": ["x"] * 2049}, "input", "array_above_max_length"),
])
def test_other_endpoints_documented_fields(endpoint, body, param, code):
    err = _error(endpoint, body)
    assert (err.param, err.code) == (param, code), err.message


def _nested(depth: int) -> bytes:
    """A body whose "x" field makes the whole body `depth` levels deep."""
    inner = depth - 1
    return b'{"model": "m", "x": ' + b"[" * inner + b"]" * inner + b"}"


def test_nesting_is_bounded_at_the_depth_the_serialiser_writes():
    assert parse_json(_nested(254))["model"] == "m"
    for depth in (255, 1023):  # parsed, then failed to serialise: a 500
        with pytest.raises(InvalidRequest) as info:
            parse_json(_nested(depth))
        assert (info.value.param, info.value.code) == ("x", "nested_too_deeply")
    with pytest.raises(InvalidRequest) as info:
        parse_json(_nested(1100))  # past orjson's own reading limit: not JSON it can read
    assert info.value.code == "invalid_json"


def test_brackets_inside_strings_cost_nothing():
    body = parse_json(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "[" * 5000}]}))
    assert validate(Endpoint.CHAT, body).model == "m"
