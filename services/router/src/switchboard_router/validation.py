"""Request bodies: parse the JSON once and check the fields the gateway itself relies on.

Everything else (temperature, tools, future fields) goes to the provider as sent, and the provider
judges it. Messages and codes follow OpenAI's own 400s, naming the `param`.
"""

from __future__ import annotations

from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest

from switchboard_router.domain import Endpoint, ParsedRequest

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ENCODING_FORMATS = ("float", "base64")


def parse_json(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON.)", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def validate(endpoint: Endpoint, body: dict[str, Any]) -> ParsedRequest:
    return _VALIDATORS[endpoint](body)


def _chat(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum "
                             "length 1, but got an empty array instead.", param="messages",
                             code="empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"messages[{i}].role")
        if not isinstance(role, str):
            raise _type(f"messages[{i}].role", "a string", role)
        if role not in ROLES:
            raise InvalidRequest(f"Invalid value: '{role}'. Supported values are: "
                                 + ", ".join(f"'{r}'" for r in ROLES) + ".",
                                 param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _type(f"messages[{i}].content", "a string or an array", content)
    return _generation(Endpoint.CHAT, body, model)


def _completions(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not isinstance(prompt, (str, list)):
        raise _type("prompt", "a string or an array", prompt)
    return _generation(Endpoint.COMPLETIONS, body, model)


def _generation(endpoint: Endpoint, body: dict[str, Any], model: str) -> ParsedRequest:
    stream = _bool(body, "stream")
    n = _int(body, "n", minimum=1)
    max_tokens = _int(body, "max_completion_tokens", minimum=1) or _int(body, "max_tokens", minimum=1)
    _int(body, "rag_top_k", minimum=1)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                                 "enabled.", param="stream_options", code="invalid_value")
        if not isinstance(options, dict):
            raise _type("stream_options", "an object", options)
        include_usage = _bool(options, "include_usage", at="stream_options.include_usage")
    return ParsedRequest(
        endpoint=endpoint, model=model, body=body, stream=stream, n=n or 1,
        include_usage=include_usage, max_tokens=max_tokens,
        session_id=_str(body, "session_id"), rag_collection=_str(body, "rag_collection"))


def _embeddings(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    value = body.get("input")
    if value is None:
        raise _missing("input")
    if not isinstance(value, (str, list)) or value in ("", []):
        raise InvalidRequest("'input' must be a non-empty string, an array of strings, an array "
                             "of tokens or an array of token arrays.", param="input",
                             code="invalid_value")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ENCODING_FORMATS:
        raise InvalidRequest(f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                             param="encoding_format", code="invalid_value")
    _int(body, "dimensions", minimum=1)
    return ParsedRequest(endpoint=Endpoint.EMBEDDINGS, model=model, body=body)


def _moderations(body: dict[str, Any]) -> ParsedRequest:
    value = body.get("input")
    if value is None:
        raise _missing("input")
    if not isinstance(value, (str, list)):
        raise _type("input", "a string or an array", value)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _type("model", "a string", model)
    return ParsedRequest(endpoint=Endpoint.MODERATIONS, model=model or "", body=body)


_VALIDATORS = {Endpoint.CHAT: _chat, Endpoint.COMPLETIONS: _completions,
               Endpoint.EMBEDDINGS: _embeddings, Endpoint.MODERATIONS: _moderations}


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise InvalidRequest("You must provide a model parameter.", param="model",
                             code="missing_required_parameter")
    if not isinstance(model, str):
        raise _type("model", "a string", model)
    return model


def _bool(body: dict[str, Any], name: str, *, at: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type(at or name, "a boolean", value)
    return value


def _int(body: dict[str, Any], name: str, *, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type(name, "an integer", value)
    if value < minimum:
        raise InvalidRequest(f"Invalid '{name}': integer below minimum value. Expected a value >= "
                             f"{minimum}, but got {value} instead.", param=name,
                             code="integer_below_min_value")
    return value


def _str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _type(name, "a string", value)
    return value or None


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param,
                          code="missing_required_parameter")


_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
               list: "an array", dict: "an object", type(None): "null"}


def _type(param: str, expected: str, value: Any) -> InvalidRequest:
    got = _JSON_TYPES.get(type(value), "another type")
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
                          param=param, code="invalid_type")
