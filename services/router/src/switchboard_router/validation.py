"""Request bodies: parse the JSON once, check every documented field, bound the work asked for.

Documented fields are checked against OpenAI's own spec (`openai_fields.py`), with the gateway's
bounds added where the spec sets none; the fields the gateway walks itself (model, messages,
prompt, input) are checked here. All of it runs before any other work, and unknown fields are kept
and go to the provider as sent. Messages and codes follow OpenAI's own 400s, naming the `param`.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest, clip

from switchboard_router.domain import Endpoint, ParsedRequest
from switchboard_router.openai_fields import (
    Check,
    check_items,
    check_length,
    compile_fields,
    documented_fields,
    missing,
    type_error,
    value_error,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")

# The gateway's bounds where OpenAI's spec sets none (README, "Request limits"). Each is far above
# what any model takes today; each keeps one request from asking for unbounded work.
MAX_DEPTH = 254  # nesting levels orjson can write back (it refuses 255): deeper would fail later
MAX_MESSAGES = 2048  # as OpenAI's API
MAX_CONTENT_PARTS = 2048
MAX_TEXT_CHARS = 10 * 1024 * 1024  # one content string or prompt, as OpenAI's API
MAX_TOOLS = 128  # as OpenAI documents for tools and functions
MAX_BATCH = 2048  # prompts or inputs in one request (OpenAI's spec says 2048 for embeddings)
MAX_TOKEN_IDS = 1 << 20  # token ids in one prompt or input: more than any model's context
MAX_TOKEN_ID = 2**32 - 1
MAX_OUTPUT_TOKENS = 1 << 20  # max_tokens, max_completion_tokens
MAX_DIMENSIONS = 16384  # the largest embedding models have 12288
MAX_LOGIT_BIAS = 1024  # entries; OpenAI documents values from -100 to 100
MAX_RAG_TOP_K = 1000

_INT64: dict[str, Any] = {"minimum": -(2**63), "maximum": 2**63 - 1}
_LOGIT_BIAS: dict[str, Any] = {
    "maxProperties": MAX_LOGIT_BIAS,
    "additionalProperties": {"type": "integer", "minimum": -100, "maximum": 100}}
_OUTPUT: dict[str, Any] = {"maximum": MAX_OUTPUT_TOKENS}
# Merged into the spec's schema of each field; Switchboard's own fields (memory, RAG) are here too.
_EXTENSIONS: dict[str, dict[str, Any]] = {"session_id": {"type": "string"}, "rag_collection": {"type": "string"},
               "rag_top_k": {"type": "integer", "minimum": 1, "maximum": MAX_RAG_TOP_K}}
_BOUNDS: dict[Endpoint, dict[str, dict[str, Any]]] = {
    Endpoint.CHAT: {
        # OpenAI's chat refuses 0 ("integer below minimum value"); legacy completions take it.
        "max_tokens": {**_OUTPUT, "minimum": 1}, "max_completion_tokens": {**_OUTPUT, "minimum": 1},
        "tools": {"maxItems": MAX_TOOLS}, "logit_bias": _LOGIT_BIAS, "seed": _INT64,
        **_EXTENSIONS,
    },
    Endpoint.COMPLETIONS: {"max_tokens": _OUTPUT, "logit_bias": _LOGIT_BIAS, "seed": _INT64,
                           **_EXTENSIONS},
    Endpoint.EMBEDDINGS: {"dimensions": {"maximum": MAX_DIMENSIONS}},
    Endpoint.MODERATIONS: {},
}


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
    _check_depth(body, data)
    return body


def _check_depth(body: dict[str, Any], data: bytes) -> None:
    """orjson reads 1024 levels but writes 254: a deeper body would parse, then fail to forward."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return  # too few brackets to nest that deep: the common request stops here
    try:
        orjson.dumps(body)
        return
    except orjson.JSONEncodeError:
        pass
    for name, value in body.items():
        try:
            orjson.dumps({name: value})
        except orjson.JSONEncodeError:
            raise InvalidRequest(
                f"Invalid '{clip(name)}': nested too deeply. Expected at most {MAX_DEPTH} levels of "
                "nested arrays and objects in the request body.", param=name,
                code="nested_too_deeply") from None


def validate(endpoint: Endpoint, body: dict[str, Any]) -> ParsedRequest:
    return _VALIDATORS[endpoint](body)


@functools.cache
def _rules() -> dict[Endpoint, dict[str, Check]]:
    """The compiled checks of every documented field, built once (a few milliseconds)."""
    documented = documented_fields()
    return {endpoint: compile_fields(_merged(documented[endpoint.value], bounds))
            for endpoint, bounds in _BOUNDS.items()}


def _merged(fields: dict[str, Any], bounds: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for name, extra in bounds.items():
        out[name] = _merge(out.get(name, {}), extra)
    return out


def _merge(schema: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) else value
    return out


def _documented(endpoint: Endpoint, body: dict[str, Any]) -> None:
    rules = _rules()[endpoint]
    for name, value in body.items():
        check = rules.get(name)
        if check is not None:
            check(value, name)


def _chat(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    _messages(body.get("messages"))
    _documented(Endpoint.CHAT, body)
    return _generation(Endpoint.CHAT, body, model)


def _messages(messages: Any) -> None:
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise type_error("messages", "an array", messages)
    check_items(messages, "messages", 1, MAX_MESSAGES)
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(message, dict):
            raise type_error(at, "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"{at}.role")
        if not isinstance(role, str):
            raise type_error(f"{at}.role", "a string", role)
        if role not in ROLES:
            raise value_error(f"{at}.role", role, list(ROLES))
        content = message.get("content")
        if isinstance(content, str):
            check_length(content, f"{at}.content", None, MAX_TEXT_CHARS)
        elif isinstance(content, list):
            _parts(content, f"{at}.content")
        elif content is not None:
            raise type_error(f"{at}.content", "a string or an array", content)


def _parts(parts: list[Any], at: str) -> None:
    check_items(parts, at, None, MAX_CONTENT_PARTS)
    for j, part in enumerate(parts):
        _part(part, f"{at}[{j}]")


def _part(part: Any, at: str) -> None:
    """A content part: typed, and its text a string (other part types are the provider's)."""
    if not isinstance(part, dict):
        raise type_error(at, "an object", part)
    kind = part.get("type")
    if kind is None:
        raise missing(f"{at}.type")
    if not isinstance(kind, str):
        raise type_error(f"{at}.type", "a string", kind)
    text = part.get("text")
    if text is None and kind == "text":
        raise missing(f"{at}.text")
    if text is not None:
        if not isinstance(text, str):
            raise type_error(f"{at}.text", "a string", text)
        check_length(text, f"{at}.text", None, MAX_TEXT_CHARS)


def _completions(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    if "prompt" not in body:
        raise missing("prompt")
    prompt = body["prompt"]  # null is allowed: OpenAI then starts from the document separator
    if isinstance(prompt, str):
        check_length(prompt, "prompt", None, MAX_TEXT_CHARS)
    elif isinstance(prompt, list):
        _batch(prompt, "prompt")
    elif prompt is not None:
        raise type_error("prompt", "a string, an array of strings, an array of tokens or an array "
                         "of token arrays", prompt)
    _documented(Endpoint.COMPLETIONS, body)
    return _generation(Endpoint.COMPLETIONS, body, model)


def _batch(items: list[Any], at: str) -> None:
    """Texts, token ids, or arrays of token ids: one kind throughout, each kind bounded."""
    if not items:
        return
    first = items[0]
    if isinstance(first, str):
        check_items(items, at, None, MAX_BATCH)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise type_error(f"{at}[{i}]", "a string", text)
            check_length(text, f"{at}[{i}]", None, MAX_TEXT_CHARS)
    elif isinstance(first, list):
        check_items(items, at, None, MAX_BATCH)
        for i, ids in enumerate(items):
            if not isinstance(ids, list):
                raise type_error(f"{at}[{i}]", "an array of tokens", ids)
            _token_ids(ids, f"{at}[{i}]")
    else:
        _token_ids(items, at)


def _token_ids(ids: list[Any], at: str) -> None:
    check_items(ids, at, 1, MAX_TOKEN_IDS)
    # map, set, min and max run in C: a million ids cost milliseconds, not a second.
    if set(map(type, ids)) != {int}:
        i = next(i for i, v in enumerate(ids) if type(v) is not int)
        raise type_error(f"{at}[{i}]", "an integer (a token id)", ids[i])
    if min(ids) < 0 or max(ids) > MAX_TOKEN_ID:
        i = next(i for i, v in enumerate(ids) if not 0 <= v <= MAX_TOKEN_ID)
        raise InvalidRequest(f"Invalid '{at}[{i}]': a token id is an integer from 0 to "
                             f"{MAX_TOKEN_ID}, but got {clip(ids[i])} instead.", param=f"{at}[{i}]",
                             code="invalid_value")


def _generation(endpoint: Endpoint, body: dict[str, Any], model: str) -> ParsedRequest:
    stream = bool(body.get("stream"))
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                             "enabled.", param="stream_options", code="invalid_value")
    return ParsedRequest(
        endpoint=endpoint, model=model, body=body, stream=stream, n=int(body.get("n") or 1),
        include_usage=bool(options and options.get("include_usage")),
        max_tokens=None if max_tokens is None else int(max_tokens),
        session_id=body.get("session_id") or None, rag_collection=body.get("rag_collection") or None)


def _embeddings(body: dict[str, Any]) -> ParsedRequest:
    model = _model(body)
    value = body.get("input")
    if value is None:
        raise missing("input")
    if not isinstance(value, (str, list)) or value in ("", []):
        raise InvalidRequest("'input' must be a non-empty string, an array of strings, an array "
                             "of tokens or an array of token arrays.", param="input",
                             code="invalid_value")
    if isinstance(value, str):
        check_length(value, "input", None, MAX_TEXT_CHARS)
    else:
        check_items(value, "input", 1, MAX_BATCH)
        _batch(value, "input")
    _documented(Endpoint.EMBEDDINGS, body)
    return ParsedRequest(endpoint=Endpoint.EMBEDDINGS, model=model, body=body)


def _moderations(body: dict[str, Any]) -> ParsedRequest:
    value = body.get("input")
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        check_length(value, "input", None, MAX_TEXT_CHARS)
    elif isinstance(value, list):
        check_items(value, "input", None, MAX_BATCH)
        for i, item in enumerate(value):
            if isinstance(item, str):
                check_length(item, f"input[{i}]", None, MAX_TEXT_CHARS)
            elif isinstance(item, dict):  # multi-modal: {"type": "text" | "image_url", ...}
                _part(item, f"input[{i}]")
            else:
                raise type_error(f"input[{i}]", "a string or an object", item)
    else:
        raise type_error("input", "a string or an array", value)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise type_error("model", "a string", model)
    _documented(Endpoint.MODERATIONS, body)
    return ParsedRequest(endpoint=Endpoint.MODERATIONS, model=model or "", body=body)


_VALIDATORS = {Endpoint.CHAT: _chat, Endpoint.COMPLETIONS: _completions,
               Endpoint.EMBEDDINGS: _embeddings, Endpoint.MODERATIONS: _moderations}


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise InvalidRequest("You must provide a model parameter.", param="model",
                             code="missing_required_parameter")
    if not isinstance(model, str):
        raise type_error("model", "a string", model)
    return model
