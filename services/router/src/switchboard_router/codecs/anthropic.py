"""Anthropic's Messages API as OpenAI's chat completions: pure functions, no I/O.

Requests are translated field by field; a field Anthropic cannot express is refused with a 400
naming it, never dropped. Answers and streams come back as OpenAI's `chat.completion` and
`chat.completion.chunk` objects. https://docs.anthropic.com/en/api/messages

Two rules peers got wrong (research/providers-wire.md §1.5): OpenAI's tool-call `index` counts
tool calls, not Anthropic's content blocks; and Anthropic's three input counts are disjoint, so
`prompt_tokens` is their sum, each counted once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
)

from switchboard_router.codecs import anthropic_native as native
from switchboard_router.codecs.anthropic_native import NativeRelay
from switchboard_router.codecs.anthropic_stream import AnthropicRelay
from switchboard_router.codecs.anthropic_wire import message_object, map_error, to_chat_completion, tokens
from switchboard_router.codecs.content_parts import data_uri, file_data
from switchboard_router.codecs.base import HttpRequest, alternating_turns, message_texts
from switchboard_router.codecs.openai import EXTENSION_FIELDS
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.providers.base import Call, Reply

DEFAULT_VERSION = "2023-06-01"
# Anthropic requires max_tokens; OpenAI does not. Without one we ask for the model's output limit
# (https://docs.anthropic.com/en/docs/about-claude/models/overview), longest prefix first.
MAX_OUTPUT_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-3-haiku", 4096), ("claude-3-opus", 4096), ("claude-3-sonnet", 4096),
    ("claude-3-5", 8192), ("claude-3-7-sonnet", 64000), ("claude-sonnet-4", 64000),
    ("claude-haiku-4", 64000), ("claude-opus-4-1", 32000), ("claude-opus-4", 32000),
)
FALLBACK_MAX_TOKENS = 4096
# reasoning_effort as an extended-thinking budget (Anthropic's minimum budget is 1024).
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
# What each role's message may carry; others (name, audio, function_call...) are refused.
# reasoning_content, our own answer's thinking, is let back in and left out: Anthropic drops the
# thinking of earlier turns anyway (and it cannot be sent back without its signature).
MESSAGE_FIELDS = {
    "system": ("role", "content"), "developer": ("role", "content"), "user": ("role", "content"),
    "assistant": ("role", "content", "tool_calls", "reasoning_content"),
    "tool": ("role", "content", "tool_call_id"),
}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Fields translated below; any other field with a value is refused, since nothing would apply it.
# The Messages API's current types (anthropic SDK 2.x) have no temperature, top_p or top_k, so
# sampling parameters are refused too.
TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "stop",
    "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort", "user", "n", *EXTENSION_FIELDS,
})


class AnthropicCodec:
    endpoints = frozenset({Endpoint.CHAT})

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.count_url = self.url + "/count_tokens"
        self.headers = headers

    def speaks_messages(self, upstream_model: str) -> bool:
        """Every Anthropic model takes /v1/messages bodies as they are (anthropic_native.py)."""
        return True

    def request(self, call: Call) -> HttpRequest:
        if call.native is not None:
            return native.request(self.url, self.headers, call)
        return HttpRequest(self.url, self.headers, orjson.dumps(translate_request(call)))

    def count_request(self, body: dict[str, Any], upstream_model: str,
                      betas: tuple[str, ...]) -> HttpRequest:
        return native.count_request(self.count_url, self.headers, body, upstream_model, betas)

    def response(self, call: Call, body: bytes) -> Reply:
        if call.native is not None:
            return native.response(call, body)
        message = message_object(body)
        answer = to_chat_completion(message)
        text = answer["choices"][0]["message"].get("content") or ""
        return Reply(data=orjson.dumps(answer), usage=tokens(message.get("usage")),
                     text=lambda: text, parsed=answer)

    def relay(self, call: Call, count: Callable[[str], int]) -> AnthropicRelay | NativeRelay:
        if call.native is not None:
            return NativeRelay(call.model, count)
        return AnthropicRelay(forward_usage=call.include_usage, count=count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return map_error(status, body, retry_after)


def codec(spec: ProviderSpec) -> AnthropicCodec:
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router",
               "anthropic-version": spec.api_version or DEFAULT_VERSION}
    headers.update(spec.headers)
    if spec.api_key:
        # An OAuth access token is a Bearer token; keys go in x-api-key unless told otherwise.
        if spec.credential == "oauth" or spec.auth_header == "authorization":
            headers["Authorization"] = f"Bearer {spec.api_key}"
        else:
            headers["x-api-key"] = spec.api_key
    return AnthropicCodec(spec.base_url, headers)


# --- requests -------------------------------------------------------------------------------

def translate_request(call: Call) -> dict[str, Any]:
    body = call.body
    for name, value in body.items():
        if name not in TRANSLATED and value is not None and value is not False:
            raise InvalidRequest(f"'{name}' is not supported by this model's provider (Anthropic "
                                 "Messages API); leave it out.", param=name, code="unsupported_parameter")
    if body.get("n") not in (None, 1):
        raise InvalidRequest("Anthropic models return one choice: 'n' must be 1.", param="n",
                             code="unsupported_parameter")
    system, messages = translate_messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": call.upstream_model, "messages": messages}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    effort = body.get("reasoning_effort")
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if effort not in (None, "none", "minimal") and budget is None:
        raise InvalidRequest(f"reasoning_effort {effort!r} has no Anthropic equivalent (use low, "
                             "medium or high).", param="reasoning_effort", code="unsupported_value")
    if budget is not None:
        if isinstance(limit, int) and limit <= budget:
            raise InvalidRequest(f"With reasoning_effort {effort!r} Anthropic thinks for {budget} "
                                 f"tokens, which must be less than max_tokens ({limit}).",
                                 param="max_completion_tokens", code="invalid_value")
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if isinstance(limit, int):
        out["max_tokens"] = limit
    else:  # room for the answer after the thinking, which counts against max_tokens
        default = default_max_tokens(call.upstream_model)
        out["max_tokens"] = max(default, budget + FALLBACK_MAX_TOKENS) if budget else default
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


def default_max_tokens(model: str) -> int:
    best = max((p for p, _ in MAX_OUTPUT_TOKENS if model.startswith(p)), key=len, default=None)
    return dict(MAX_OUTPUT_TOKENS)[best] if best else FALLBACK_MAX_TOKENS


def translate_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, alternating user/assistant turns), as codecs.base.alternating_turns."""
    return alternating_turns(messages, provider="Anthropic", fields=MESSAGE_FIELDS,
                             system=_text_blocks, user=_user_blocks, assistant=_assistant_blocks,
                             tool=_tool_result, is_result=lambda b: b["type"] == "tool_result",
                             empty_user="A user message needs some content for Anthropic.")


def _text_blocks(content: Any, at: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": t} for t in message_texts(content, at, "Anthropic")]


def _user_blocks(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content, at)
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            out += _text_blocks([part], at)
        elif kind == "image_url":
            out.append({"type": "image", "source": _image_source(part.get("image_url") or {},
                                                                 f"{at}[{j}].image_url.url")})
        elif kind == "file":
            out.append(_document(part.get("file") or {}, f"{at}[{j}].file"))
        else:
            raise InvalidRequest(f"Content parts of type {kind!r} cannot be sent to Anthropic.",
                                 param=f"{at}[{j}].type", code="unsupported_value")
    return out


def _image_source(image: dict[str, Any], at: str) -> dict[str, Any]:
    url = image.get("url") or ""
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    if not url.startswith("data:"):
        raise InvalidRequest("An image must be an http(s) URL or a base64 data URI.", param=at,
                             code="invalid_value")
    media_type, data = data_uri(url, at)
    if media_type not in IMAGE_TYPES:
        raise InvalidRequest(f"Anthropic takes JPEG, PNG, GIF and WebP images, not {media_type!r}.",
                             param=at, code="unsupported_value")
    return {"type": "base64", "media_type": media_type, "data": data}


def _document(file: dict[str, Any], at: str) -> dict[str, Any]:
    media_type, data = file_data(file, at, "Anthropic")
    if media_type != "application/pdf":
        raise InvalidRequest(f"Anthropic takes PDF documents, not {media_type!r}.",
                             param=f"{at}.file_data", code="unsupported_value")
    block: dict[str, Any] = {"type": "document",
                             "source": {"type": "base64", "media_type": media_type, "data": data}}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(m: dict[str, Any], at: str) -> list[dict[str, Any]]:
    blocks = _text_blocks(m.get("content"), f"{at}.content")
    for j, tool_call in enumerate(m.get("tool_calls") or ()):
        function = tool_call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest("A tool call's arguments must be a JSON object to send to Anthropic.",
                                 param=f"{at}.tool_calls[{j}].function.arguments", code="invalid_value")
        blocks.append({"type": "tool_use", "id": tool_call.get("id"), "name": function.get("name"),
                       "input": parsed})
    return blocks


def _tool_result(m: dict[str, Any], at: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.get("tool_call_id")}
    content = m.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        texts = _text_blocks(content, f"{at}.content")
        if texts:
            block["content"] = texts
    return block


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise InvalidRequest(f"Anthropic takes function tools, not {tool.get('type')!r}.",
                             param=f"tools[{i}].type", code="unsupported_value")
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name"),
                           "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("strict") is not None:
        out["strict"] = function["strict"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        raise InvalidRequest("Anthropic takes tool_choice auto, required, none or a function.",
                             param="tool_choice", code="unsupported_value")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _output_format(response_format: Any) -> dict[str, Any] | None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema is required for Anthropic.",
                                 param="response_format.json_schema.schema", code="invalid_value")
        return {"type": "json_schema", "schema": schema}
    raise InvalidRequest(f"Anthropic has no {kind!r} output mode; use json_schema with a schema.",
                         param="response_format.type", code="unsupported_value")
