"""Request validation: OpenAI-style messages and codes that name the param; unknown fields kept."""

from __future__ import annotations

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
