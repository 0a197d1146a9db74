"""Anthropic's Messages API (`POST /v1/messages`) as Chat Completions and back: pure functions of
JSON and bytes, no I/O.

The request becomes a Chat Completions body (every field carried or refused by name: nothing is
dropped silently); messages_answer.py turns the answer back. research/providers-wire.md §1, §6.2.
"""

from __future__ import annotations

from typing import Any

import orjson
from switchboard_common.errors import ApiError, InvalidRequest

from switchboard_router.inbound import call_ids

# Anthropic's error type for each HTTP status (types/shared/error_object.py); edge/errors.lua and
# edge/render.py hold the same table for the errors they shape.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 504: "timeout_error", 503: "overloaded_error",
               529: "overloaded_error"}

# Top-level fields: how each is carried, or why it cannot be.
_CARRIED = {"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p",
            "tools", "tool_choice", "metadata", "stream", "thinking", "service_tier"}
_REFUSED = {
    "top_k": "Chat Completions has no top_k",
    "mcp_servers": "MCP servers are not supported through this gateway",
    "container": "containers are not supported through this gateway",
    "context_management": "context management is not supported through this gateway",
    "output_config": "output_config is not supported through this gateway",
    "inference_geo": "inference_geo is not supported through this gateway",
}
_COUNT_FIELDS = _CARRIED - {"max_tokens", "stream", "metadata", "service_tier", "stop_sequences",
                            "temperature", "top_p"}
_BLOCK_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control", "caller", "toolset_name"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control", "toolset_name"},
}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def error_body(error: ApiError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error.http_status), "message": error.message}}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


# The status an OpenAI error type stands for: errors met in a stream after its 200 carry only it.
_STATUS_OF_OPENAI_TYPE = {"invalid_request_error": 400, "authentication_error": 401,
                          "insufficient_quota": 402, "permission_error": 403,
                          "rate_limit_error": 429, "timeout": 504, "service_unavailable": 529}


def stream_error(error: Any) -> dict[str, Any]:
    """Anthropic's error object for an OpenAI-shaped one met mid-stream (a guardrail's block
    stays invalid_request_error, a provider's failure api_error)."""
    error = error if isinstance(error, dict) else {}
    status = _STATUS_OF_OPENAI_TYPE.get(str(error.get("type")), 500)
    return {"type": error_type(status), "message": str(error.get("message") or "")}


# --- request -------------------------------------------------------------------------------------

def to_chat(body: dict[str, Any], *, counting: bool = False) -> dict[str, Any]:
    """The Chat Completions body for an Anthropic Messages body (count_tokens' when `counting`).
    cache_control is a caching hint: OpenAI-format providers cache prompts by themselves, so it is
    consumed here, not forwarded."""
    allowed = _COUNT_FIELDS if counting else _CARRIED
    for name in body:
        if name in _REFUSED:
            raise InvalidRequest(f"'{name}' is not supported: {_REFUSED[name]}.", param=name,
                                 code="unsupported_parameter")
        if name not in allowed:
            raise InvalidRequest(f"{name}: Extra inputs are not permitted", param=name,
                                 code="unknown_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required", param="model")
    chat: dict[str, Any] = {"model": model}
    if not counting:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise InvalidRequest("max_tokens: Field required (an integer >= 1)", param="max_tokens")
        chat["max_tokens"] = max_tokens
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: Field required (a non-empty list)", param="messages")
    messages: list[dict[str, Any]] = []
    if "system" in body:
        messages.append({"role": "system", "content": _system_text(body["system"], "system")})
    for i, message in enumerate(raw):
        messages += _messages(message, f"messages.{i}")
    chat["messages"] = messages
    _thinking(body.get("thinking"))
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            if not isinstance(body[name], int | float) or isinstance(body[name], bool):
                raise InvalidRequest(f"{name}: Input should be a number", param=name)
            chat[name] = body[name]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest("stop_sequences: Input should be a list of strings", param="stop_sequences")
        if stops:
            chat["stop"] = stops
    if body.get("tools"):
        chat["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(_list(body["tools"], "tools"))]
    if body.get("tool_choice") is not None:
        chat.update(_tool_choice(body["tool_choice"]))
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
            raise InvalidRequest("metadata: only user_id is accepted", param="metadata")
        if metadata.get("user_id") is not None:
            chat["user"] = str(metadata["user_id"])
    tier = body.get("service_tier")
    if tier not in (None, "auto"):
        raise InvalidRequest(f"service_tier {tier!r} is not supported: only 'auto' (the provider's "
                             "default) is.", param="service_tier")
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # message_delta's exact counts
    elif body.get("stream") not in (None, False):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    return chat


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{at}: Input should be a valid list", param=at)
    return value


def _block(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise InvalidRequest(f"{at}: Input should be a content block object with a type", param=at)
    # A block the SDK dumped from its own answer carries its unset optional fields as null.
    value = {k: v for k, v in value.items() if v is not None}
    kind = value["type"]
    if kind not in _BLOCK_KEYS:
        raise InvalidRequest(f"{at}.type: '{kind}' blocks are not supported through this gateway "
                             "(text, image, tool_use and tool_result are).", param=f"{at}.type")
    extra = set(value) - _BLOCK_KEYS[kind]
    if extra:
        raise InvalidRequest(f"{at}.{sorted(extra)[0]}: Extra inputs are not permitted",
                             param=f"{at}.{sorted(extra)[0]}")
    if value.get("citations"):
        raise InvalidRequest(f"{at}.citations: citations are not supported through this gateway",
                             param=f"{at}.citations")
    if "toolset_name" in value:
        raise InvalidRequest(f"{at}.toolset_name: MCP toolsets are not supported through this "
                             "gateway", param=f"{at}.toolset_name")
    if value.get("caller", {"type": "direct"}) != {"type": "direct"}:
        raise InvalidRequest(f"{at}.caller: only direct tool calls can be translated",
                             param=f"{at}.caller")
    return value


def _text(block: dict[str, Any], at: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{at}.text: Field required", param=f"{at}.text")
    return text


def _system_text(system: Any, at: str) -> str:
    if isinstance(system, str):
        return system
    parts = []
    for i, block in enumerate(_list(system, at)):
        block = _block(block, f"{at}.{i}")
        if block["type"] != "text":
            raise InvalidRequest(f"{at}.{i}.type: system blocks must be text", param=f"{at}.{i}.type")
        parts.append(_text(block, f"{at}.{i}"))
    return "\n\n".join(parts)


def _messages(message: Any, at: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or set(message) - {"role", "content"}:
        raise InvalidRequest(f"{at}: a message has only role and content", param=at)
    role, content = message.get("role"), message.get("content")
    if role == "system":
        return [{"role": "system", "content": _system_text(content, f"{at}.content")}]
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"{at}.role: Input should be 'user' or 'assistant'", param=f"{at}.role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = [_block(b, f"{at}.content.{i}") for i, b in enumerate(_list(content, f"{at}.content"))]
    if role == "assistant":
        return [_assistant(blocks, f"{at}.content")]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        where = f"{at}.content.{i}"
        if block["type"] == "tool_result":
            out.append(_tool_result(block, where))  # the tool messages answer the assistant first
        elif block["type"] == "text":
            parts.append({"type": "text", "text": _text(block, where)})
        elif block["type"] == "image":
            parts.append(_image(block, where))
        else:
            raise InvalidRequest(f"{where}.type: '{block['type']}' blocks belong to the assistant",
                                 param=f"{where}.type")
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant(blocks: list[dict[str, Any]], at: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        where = f"{at}.{i}"
        if block["type"] == "text":
            texts.append(_text(block, where))
        elif block["type"] == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise InvalidRequest(f"{where}: tool_use needs an id and a name", param=where)
            call_id, extra = call_ids.incoming(block["id"])
            calls.append({"id": call_id, "type": "function", "function": {
                "name": block["name"], "arguments": orjson.dumps(block.get("input") or {}).decode()}})
            if extra is not None:
                calls[-1]["extra_content"] = extra
        else:
            raise InvalidRequest(f"{where}.type: '{block['type']}' blocks are not allowed in an "
                                 "assistant turn", param=f"{where}.type")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    elif not texts:
        out["content"] = ""
    return out


def _tool_result(block: dict[str, Any], at: str) -> dict[str, Any]:
    if not isinstance(block.get("tool_use_id"), str):
        raise InvalidRequest(f"{at}.tool_use_id: Field required", param=f"{at}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            part = _block(part, f"{at}.content.{i}")
            if part["type"] != "text":
                raise InvalidRequest(f"{at}.content.{i}.type: only text tool results can be "
                                     "translated to Chat Completions", param=f"{at}.content.{i}.type")
            texts.append(_text(part, f"{at}.content.{i}"))
        content = "\n".join(texts)
    elif not isinstance(content, str):
        raise InvalidRequest(f"{at}.content: a string or a list of text blocks", param=f"{at}.content")
    if block.get("is_error"):
        # Chat Completions has no error flag on a tool message: the model reads it in the text.
        content = f"Error: {content}"
    return {"role": "tool", "tool_call_id": call_ids.call_id_only(block["tool_use_id"]),
            "content": content}


def _image(block: dict[str, Any], at: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        media = source.get("media_type")
        if media not in _IMAGE_TYPES or not isinstance(source.get("data"), str):
            raise InvalidRequest(f"{at}.source: base64 images need media_type (one of "
                                 f"{', '.join(_IMAGE_TYPES)}) and data", param=f"{at}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise InvalidRequest(f"{at}.source: base64 or url images only", param=f"{at}.source")


def _tool(tool: Any, at: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        raise InvalidRequest(f"{at}: only client tools (name, description, input_schema) can be "
                             "translated; server tools are not supported", param=at)
    extra = set(tool) - {"type", "name", "description", "input_schema", "cache_control", "strict"}
    if extra:
        raise InvalidRequest(f"{at}.{sorted(extra)[0]}: Extra inputs are not permitted",
                             param=f"{at}.{sorted(extra)[0]}")
    if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
        raise InvalidRequest(f"{at}: a tool needs a name and an input_schema", param=at)
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise InvalidRequest("tool_choice: type must be auto, any, tool or none", param="tool_choice")
    extra = set(choice) - {"type", "name", "disable_parallel_tool_use"}
    if extra:
        raise InvalidRequest(f"tool_choice.{sorted(extra)[0]}: Extra inputs are not permitted",
                             param="tool_choice")
    kind = choice["type"]
    out: dict[str, Any] = {}
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise InvalidRequest("tool_choice.name: Field required", param="tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False
    return out


def _thinking(thinking: Any) -> None:
    if thinking is None or (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        return
    raise InvalidRequest("thinking: extended thinking cannot be translated to Chat Completions "
                         "(leave it out, or set it to disabled).", param="thinking")
