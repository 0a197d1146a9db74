"""Request checks of the fake OpenAI API: OpenAI's 400 messages, with `param` naming the field."""

from __future__ import annotations

from typing import Any

# Every top-level argument OpenAI accepts; anything else is rejected the way OpenAI rejects it
# ("Unrecognized request argument supplied"), which catches a gateway leaking its own fields.
# https://platform.openai.com/docs/api-reference/chat/create
CHAT_ARGUMENTS = frozenset({
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice",
    "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
COMPLETION_ARGUMENTS = frozenset({
    "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "model", "n",
    "presence_penalty", "prompt", "seed", "stop", "stream", "stream_options", "suffix",
    "temperature", "top_p", "user",
})
EMBEDDING_ARGUMENTS = frozenset({"dimensions", "encoding_format", "input", "model", "user"})

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
# Which content parts each role may send (the union types of ChatCompletionMessageParam).
PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": ("text",),
}


class InvalidRequest(Exception):
    """A 400 `invalid_request_error`; `param` and `code` go into the error body as OpenAI's do."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def check_chat(body: dict[str, Any]) -> None:
    """Validate a chat completion request the way OpenAI does, field by field."""
    _check_arguments(body, CHAT_ARGUMENTS)
    _check_string(body, "model")
    messages = _require(body, "messages")
    _check_kind(messages, "array", "messages")
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.", "messages", "empty_array")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_integer(body, "n", 1, 128)
    _check_integer(body, "max_tokens", 1)
    _check_integer(body, "max_completion_tokens", 1)
    _check_stream(body)
    _check_tools(body)


def check_completion(body: dict[str, Any]) -> None:
    """Validate a legacy text completion request."""
    _check_arguments(body, COMPLETION_ARGUMENTS)
    _check_string(body, "model")
    prompt = _require(body, "prompt")
    if not (isinstance(prompt, str) or _is_list_of(prompt, str) or _is_tokens(prompt)):
        raise InvalidRequest(
            "Invalid type for 'prompt': expected one of a string, an array of strings, an array of "
            f"integers or an array of arrays of integers, but got {_described(prompt)} instead.",
            "prompt", "invalid_type")
    _check_number(body, "temperature", 0, 2)
    _check_integer(body, "n", 1, 128)
    _check_integer(body, "max_tokens", 0)
    _check_stream(body)


def check_embeddings(body: dict[str, Any]) -> None:
    """Validate an embeddings request."""
    _check_arguments(body, EMBEDDING_ARGUMENTS)
    _check_string(body, "model")
    inputs = _require(body, "input")
    if not _is_embedding_input(inputs):
        # OpenAI's wording for an empty or malformed input is this generic one.
        raise InvalidRequest("'$.input' is invalid. Please check the API reference: "
                             "https://platform.openai.com/docs/api-reference.", "input")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise InvalidRequest(f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                             "encoding_format", "invalid_value")
    _check_integer(body, "dimensions", 1, 3072)


def _check_arguments(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in body:
        if name not in allowed:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}")


def _check_message(message: Any, where: str) -> None:
    _check_kind(message, "object", where)
    role = message.get("role")
    if role is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.role'.",
                             f"{where}.role", "missing_required_parameter")
    if role not in ROLES:
        raise InvalidRequest(f"Invalid value: '{role}'. Supported values are: 'system', "
                             "'assistant', 'user', 'function', 'tool', and 'developer'.",
                             f"{where}.role", "invalid_value")
    calls = message.get("tool_calls")
    if calls is not None:
        _check_kind(calls, "array", f"{where}.tool_calls")
    content = message.get("content")
    # An assistant turn that only calls tools carries no content.
    may_be_empty = role == "assistant" and bool(calls or message.get("function_call"))
    if content is None and not may_be_empty:
        if "content" not in message:
            raise InvalidRequest(f"Missing required parameter: '{where}.content'.",
                                 f"{where}.content", "missing_required_parameter")
        raise InvalidRequest(f"Invalid type for '{where}.content': expected one of a string or "
                             "array of objects, but got null instead.", f"{where}.content",
                             "invalid_type")
    if isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(part, role, f"{where}.content[{j}]")
    elif content is not None and not isinstance(content, str):
        raise InvalidRequest(f"Invalid type for '{where}.content': expected one of a string or "
                             f"array of objects, but got {_described(content)} instead.",
                             f"{where}.content", "invalid_type")
    if role == "tool":
        _check_string(message, "tool_call_id", f"{where}.tool_call_id")
    if role == "function":
        _check_string(message, "name", f"{where}.name")


def _check_part(part: Any, role: str, where: str) -> None:
    _check_kind(part, "object", where)
    allowed = PART_TYPES[role]
    kind = _require(part, "type", f"{where}.type")
    if kind not in allowed:
        supported = _quoted_list(allowed)
        raise InvalidRequest(f"Invalid value: '{kind}'. Supported values are: {supported}.",
                             f"{where}.type", "invalid_value")
    if kind in ("text", "refusal"):
        _check_string(part, kind, f"{where}.{kind}")


def _check_stream(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None:
        _check_kind(stream, "boolean", "stream")
    options = body.get("stream_options")
    if options is None:
        return
    if stream is not True:
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                             "enabled.", "stream_options")
    _check_kind(options, "object", "stream_options")
    if "include_usage" in options:
        _check_kind(options["include_usage"], "boolean", "stream_options.include_usage")


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    _check_kind(tools, "array", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        _check_kind(tool, "object", where)
        kind = _require(tool, "type", f"{where}.type")
        if kind not in ("function", "custom"):
            raise InvalidRequest(f"Invalid value: '{kind}'. Supported values are: 'function' and "
                                 "'custom'.", f"{where}.type", "invalid_value")
        spec = _require(tool, kind, f"{where}.{kind}")
        _check_kind(spec, "object", f"{where}.{kind}")
        _check_string(spec, "name", f"{where}.{kind}.name")


def _require(container: dict[str, Any], name: str, param: str | None = None) -> Any:
    if container.get(name) is None:
        param = param or name
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param,
                             "missing_required_parameter")
    return container[name]


def _check_string(container: dict[str, Any], name: str, param: str | None = None) -> None:
    _check_kind(_require(container, name, param), "string", param or name)


def _check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    _check_kind(value, "decimal", name)
    if value < low:
        raise InvalidRequest(f"Invalid '{name}': decimal below minimum value. Expected a value >= "
                             f"{low}, but got {value} instead.", name, "decimal_below_min_value")
    if value > high:
        raise InvalidRequest(f"Invalid '{name}': decimal above maximum value. Expected a value <= "
                             f"{high}, but got {value} instead.", name, "decimal_above_max_value")


def _check_integer(body: dict[str, Any], name: str, low: int, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    _check_kind(value, "integer", name)
    if value < low:
        raise InvalidRequest(f"Invalid '{name}': integer below minimum value. Expected a value >= "
                             f"{low}, but got {value} instead.", name, "integer_below_min_value")
    if high is not None and value > high:
        raise InvalidRequest(f"Invalid '{name}': integer above maximum value. Expected a value <= "
                             f"{high}, but got {value} instead.", name, "integer_above_max_value")


def _check_kind(value: Any, expected: str, param: str) -> None:
    kind = _kind(value)
    if kind == expected or (expected == "decimal" and kind == "integer"):
        return
    article = "an" if expected[0] in "aeiou" else "a"
    raise InvalidRequest(f"Invalid type for '{param}': expected {article} {expected}, but got "
                         f"{_described(value)} instead.", param, "invalid_type")


def _kind(value: Any) -> str:
    # bool before int: in Python True is an int, in JSON it is not.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    kinds = ((float, "decimal"), (str, "string"), (list, "array"), (dict, "object"))
    for python_type, name in kinds:
        if isinstance(value, python_type):
            return name
    return "null"


def _described(value: Any) -> str:
    kind = _kind(value)
    return kind if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def _is_list_of(value: Any, item_type: type) -> bool:
    return isinstance(value, list) and all(isinstance(item, item_type) for item in value)


def _is_embedding_input(value: Any) -> bool:
    """A non-empty string, or a non-empty array of non-empty strings or of token ids."""
    if isinstance(value, str):
        return value != ""
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(item, str) and item for item in value) or _is_tokens(value)


def _is_tokens(value: Any) -> bool:
    """An array of token ids, or an array of such arrays."""
    if not isinstance(value, list):
        return False
    return _is_ids(value) or all(isinstance(row, list) and row and _is_ids(row) for row in value)


def _is_ids(values: list[Any]) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) for t in values)


def _quoted_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]
