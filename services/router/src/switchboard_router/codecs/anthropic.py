"""Anthropic's Messages API as OpenAI's chat completions: pure functions, no I/O.

Requests are translated field by field; a field Anthropic cannot express is refused with a 400
naming it, never dropped. Answers and streams come back as OpenAI's `chat.completion` and
`chat.completion.chunk` objects. https://docs.anthropic.com/en/api/messages

Two rules peers got wrong (research/providers-wire.md §1.5): OpenAI's tool-call `index` counts
tool calls, not Anthropic's content blocks; and Anthropic's three input counts are disjoint, so
`prompt_tokens` is their sum, each counted once.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

from switchboard_router.codecs.base import HttpRequest, ProviderOverloaded, message_texts
from switchboard_router.codecs.openai import EXTENSION_FIELDS, retry_seconds, stream_texts
from switchboard_router.codecs.sse import DONE, SseDecoder, SseEvent
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Endpoint, ProviderSpec, Tokens
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
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
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
        self.headers = headers

    def request(self, call: Call) -> HttpRequest:
        return HttpRequest(self.url, self.headers, orjson.dumps(translate_request(call)))

    def response(self, call: Call, body: bytes) -> Reply:
        message = _object(body)
        answer = to_chat_completion(message)
        text = answer["choices"][0]["message"].get("content") or ""
        return Reply(data=orjson.dumps(answer), usage=tokens(message.get("usage")),
                     text=lambda: text, parsed=answer)

    def relay(self, call: Call, count: Callable[[str], int]) -> AnthropicRelay:
        return AnthropicRelay(forward_usage=call.include_usage, count=count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return map_error(status, body, retry_after)


def codec(spec: ProviderSpec) -> AnthropicCodec:
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router",
               "anthropic-version": spec.api_version or DEFAULT_VERSION}
    headers.update(spec.headers)
    if spec.api_key:
        if spec.auth_header == "authorization":
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
    """(system text blocks, alternating user/assistant turns). Consecutive turns of one role are
    merged (parallel tool results become one user turn), tool results first in their turn."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        role = m.get("role")
        for key, value in m.items():
            if key not in MESSAGE_FIELDS.get(role, ()) and value not in (None, False, "", [], {}):
                raise InvalidRequest(f"'{key}' on a {role} message cannot be sent to Anthropic; "
                                     "leave it out.", param=f"{at}.{key}", code="unsupported_parameter")
        if role in ("system", "developer"):
            system += _text_blocks(m.get("content"), f"{at}.content")
            continue
        if role == "user":
            blocks = _user_blocks(m.get("content"), f"{at}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(m, at)
            if not blocks:
                continue  # an empty assistant turn carries nothing Anthropic could take
        elif role == "tool":
            role, blocks = "user", [_tool_result(m, at)]
        else:
            raise InvalidRequest(f"Messages with role {role!r} cannot be sent to Anthropic.",
                                 param=f"{at}.role", code="unsupported_value")
        if not blocks:
            raise InvalidRequest("A user message needs some content for Anthropic.",
                                 param=f"{at}.content", code="invalid_value")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool_result blocks must open the turn that answers tool_use
            content = turn["content"]
            turn["content"] = [b for b in content if b["type"] == "tool_result"] + \
                [b for b in content if b["type"] != "tool_result"]
    return system, turns


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


def _data_uri(url: str, at: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URI, the data checked."""
    head, comma, data = url.partition(",")
    media_type = head[5:].removesuffix(";base64")
    if not comma or not head.endswith(";base64"):
        raise InvalidRequest("A data URI must be base64: data:<type>;base64,<data>.", param=at,
                             code="invalid_value")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The data URI's data is not valid base64.", param=at,
                             code="invalid_value") from None
    return media_type, data


def _image_source(image: dict[str, Any], at: str) -> dict[str, Any]:
    url = image.get("url") or ""
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    if not url.startswith("data:"):
        raise InvalidRequest("An image must be an http(s) URL or a base64 data URI.", param=at,
                             code="invalid_value")
    media_type, data = _data_uri(url, at)
    if media_type not in IMAGE_TYPES:
        raise InvalidRequest(f"Anthropic takes JPEG, PNG, GIF and WebP images, not {media_type!r}.",
                             param=at, code="unsupported_value")
    return {"type": "base64", "media_type": media_type, "data": data}


def _document(file: dict[str, Any], at: str) -> dict[str, Any]:
    data_uri = file.get("file_data")
    if not isinstance(data_uri, str) or not data_uri.startswith("data:"):
        raise InvalidRequest("Files go to Anthropic as file_data (a base64 data URI); uploaded "
                             "file ids are OpenAI's own.", param=f"{at}.file_id"
                             if file.get("file_id") else f"{at}.file_data", code="unsupported_value")
    media_type, data = _data_uri(data_uri, f"{at}.file_data")
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


# --- answers --------------------------------------------------------------------------------

def tokens(usage: Any) -> Tokens | None:
    """Anthropic's input counts are disjoint (uncached, cache read, cache written): their sum is
    OpenAI's prompt_tokens, each counted once."""
    if not isinstance(usage, dict) or not isinstance(usage.get("output_tokens"), int):
        return None
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    return Tokens(_prompt_tokens(usage), usage["output_tokens"],
                  cached=usage.get("cache_read_input_tokens") or 0,
                  cache_write=usage.get("cache_creation_input_tokens") or 0,
                  reasoning=thinking if isinstance(thinking, int) else 0)


def _prompt_tokens(usage: dict[str, Any]) -> int:
    return sum(usage.get(k) or 0 for k in (
        "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = _prompt_tokens(usage), usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.get("cache_read_input_tokens") or 0,
                                  "cache_creation_tokens": usage.get("cache_creation_input_tokens") or 0},
    }
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    if isinstance(thinking, int):
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def to_chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use":
            tool_calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls
                             else None, "refusal": None}
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if tool_calls:
        reply["tool_calls"] = tool_calls
    answer: dict[str, Any] = {
        "id": message.get("id"), "object": "chat.completion", "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop")}],
    }
    if isinstance(message.get("usage"), dict):
        answer["usage"] = openai_usage(message["usage"])
    return answer


def _object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("type") != "message":
        raise UpstreamError("The provider returned a response that is not an Anthropic message.",
                            code="invalid_upstream_response")
    return parsed


# --- errors ---------------------------------------------------------------------------------

def map_error(status: int, data: bytes, retry_after: str | None = None) -> ApiError:
    """Anthropic's `{"type":"error","error":{"type","message"}}` as our error, by its type first
    (https://docs.anthropic.com/en/api/errors), else by status."""
    error = _error_object(data)
    kind = error.get("type") if isinstance(error.get("type"), str) else ""
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    seconds = retry_seconds(retry_after)
    if kind in ("authentication_error", "permission_error") or status in (401, 403):
        return UpstreamError("The provider rejected the gateway's credentials for this model; "
                             "the gateway's operator must check the provider key.",
                             code="provider_auth_error")
    if kind == "billing_error" or status == 402:
        return UpstreamError("The provider refused the gateway's account (billing); the gateway's "
                             "operator must check it.", code="provider_billing_error")
    if kind == "overloaded_error" or status == 529:
        return ProviderOverloaded(message or "The provider is overloaded; retry later.",
                                  retry_after=seconds)
    if kind == "rate_limit_error" or status == 429:
        return RateLimited(message or "The provider is rate limiting requests; retry later.",
                           retry_after=seconds)
    if kind == "not_found_error" or status == 404:
        return NotFound(message or "The provider does not know this model.", code="model_not_found")
    if kind == "request_too_large" or status == 413:
        return PayloadTooLarge(message or "The request is too large for the provider.")
    if kind == "timeout_error" or status in (408, 504):
        return UpstreamTimeout("The provider timed out.")
    if status >= 500 or kind == "api_error":
        detail = f": {message}" if message else ""
        return UpstreamError(f"The provider failed with HTTP {status}{detail}")
    return InvalidRequest(message or f"The provider rejected the request (HTTP {status}).",
                          code="provider_invalid_request")


def map_stream_error(payload: Any) -> ApiError:
    """An `event: error` inside a stream that began with HTTP 200."""
    error = payload.get("error") if isinstance(payload, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = message if isinstance(message, str) and message else \
        "The provider reported an error during the stream."
    if kind == "overloaded_error":
        return ProviderOverloaded(message)
    if kind == "rate_limit_error":
        return RateLimited(message)
    return UpstreamError(message)


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


# --- streams --------------------------------------------------------------------------------

class AnthropicRelay:
    """One Anthropic event stream as OpenAI chunks. Holds only this stream's state: the message
    id and model, which content block is which tool call, and the usage so far."""

    def __init__(self, forward_usage: bool, count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        self.completion = CompletionCounter(stream_texts, count)
        self._forward_usage = forward_usage
        self._decoder = SseDecoder()
        self._head = b""  # the fixed start of every chunk: id, object, created, model
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._finish: str | None = None

    def feed(self, read: bytes) -> bytes:
        return self._translate(self._decoder.feed(read))

    def finish(self) -> bytes:
        out = self._translate(self._decoder.close())
        if self.done or self.error is not None:
            return out
        # The provider closed the stream before message_stop: the answer is cut, say so.
        self.error = UpstreamError("The provider ended the stream before the message was complete.")
        return out + _error_event(self.error)

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _translate(self, events: list[SseEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is None or self.done or self.error is not None:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                payload = None
            if not isinstance(payload, dict):
                self.error = UpstreamError("The provider sent a stream event that is not JSON.",
                                           code="invalid_upstream_response")
                out.append(_error_event(self.error))
                continue
            piece = self._event(payload.get("type") or event.event, payload)
            if piece:
                out.append(piece)
        data = b"".join(out)
        if data:
            self.completion.add(data)
        return data

    def _event(self, kind: Any, e: dict[str, Any]) -> bytes:
        if kind == "content_block_delta":
            delta = e.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if dkind == "input_json_delta":
                index = self._tool_index.get(e.get("index", -1))
                fragment = delta.get("partial_json", "")
                if index is None or not fragment:
                    return b""
                return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            if dkind == "thinking_delta":
                return self._chunk({"reasoning_content": delta.get("thinking", "")})
            return b""  # signature_delta, citations_delta: nothing OpenAI's chunk can carry
        if kind == "content_block_start":
            block = e.get("content_block") or {}
            if block.get("type") != "tool_use":
                return b""
            index = len(self._tool_index)
            self._tool_index[e.get("index", -1)] = index
            return self._chunk({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                "function": {"name": block.get("name"), "arguments": ""}}]})
        if kind == "message_start":
            message = e.get("message") or {}
            self._head = (b'{"id":' + orjson.dumps(message.get("id")) +
                          b',"object":"chat.completion.chunk","created":' + str(int(time.time())).encode() +
                          b',"model":' + orjson.dumps(message.get("model")) + b',"choices":')
            self._usage.update(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            usage = {k: v for k, v in (e.get("usage") or {}).items() if v is not None}
            self._usage.update(usage)
            self.usage = tokens(self._usage)
            if self.usage is not None:
                self.completion.stop()
            reason = (e.get("delta") or {}).get("stop_reason")
            self._finish = FINISH_REASONS.get(reason or "", "stop")
            return self._chunk({}, self._finish)
        if kind == "message_stop":
            self.done = True
            tail = b""
            if self._forward_usage and self._usage:
                tail = b"data: " + self._head + b'[],"usage":' + orjson.dumps(openai_usage(self._usage)) + b"}\n\n"
            return tail + DONE
        if kind == "error":
            self.error = map_stream_error(e)
            return _error_event(self.error)
        return b""  # ping, content_block_stop, and event types added later

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + self._head + b"[" + orjson.dumps(choice) + b"]}\n\n"


def _error_event(error: ApiError) -> bytes:
    return b"data: " + orjson.dumps(error.to_openai()) + b"\n\n"
