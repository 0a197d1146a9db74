"""AWS Bedrock's Converse API as OpenAI's chat completions: pure translation, no I/O.

`POST {base}/model/{modelId}/converse` (and `/converse-stream`, relayed by bedrock_stream.py),
the model id percent-encoded in the path (`...-v1%3A0`) and signed that way (aws_auth.py).
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html

Bedrock's rules that its service model does not encode are kept here, before sending
(research/providers-wire.md §3.3): no blank text blocks, the conversation opens with a user turn,
turns of one role are merged (so parallel tool results form one user turn), and `toolConfig` is
sent whenever the history holds tool blocks, even when this turn offers no tools. What Converse
cannot express (tool_choice "none", parallel_tool_calls false, image URLs, n > 1) is refused
with a 400 naming it. JSON-schema output is a forced tool whose input is the answer. `file` parts
(PDF, text, CSV, HTML, Word, Excel as base64 data URIs) become document blocks; reasoning_effort
becomes Claude's extended thinking (additionalModelRequestFields), its reasoningContent the
answer's reasoning_content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
)

from switchboard_router.codecs import anthropic_native
from switchboard_router.codecs import bedrock_embeddings as embeddings
from switchboard_router.codecs import bedrock_native as native
from switchboard_router.codecs.bedrock_errors import map_error
from switchboard_router.codecs.bedrock_native import BedrockNativeRelay
from switchboard_router.codecs.anthropic import FALLBACK_MAX_TOKENS, THINKING_BUDGETS
from switchboard_router.codecs.aws_auth import BearerAuth, RequestAuth, SigV4
from switchboard_router.codecs.base import HttpRequest, alternating_turns
from switchboard_router.codecs.bedrock_content import texts, user_blocks
from switchboard_router.codecs.bedrock_answers import parse_answer, to_chat_completion, tokens
from switchboard_router.codecs.bedrock_stream import BedrockRelay
from switchboard_router.codecs.openai import EXTENSION_FIELDS
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.providers.base import Call, Reply

DEFAULT_REGION = "us-east-1"
TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "user", "n", "reasoning_effort", *EXTENSION_FIELDS,
})
MESSAGE_FIELDS = {
    "system": ("role", "content"), "developer": ("role", "content"), "user": ("role", "content"),
    "assistant": ("role", "content", "tool_calls", "reasoning_content"),
    "tool": ("role", "content", "tool_call_id"),
}
JSON_TOOL = "json_response"  # the forced tool's name when the schema has none usable
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# requestMetadata's value pattern (bedrock-runtime service model, RequestMetadataValueString).
_METADATA_VALUE = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}")


class BedrockCodec:
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS})  # embeddings: Titan, Cohere

    def __init__(self, base_url: str, auth: RequestAuth, headers: dict[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.headers = {"Content-Type": "application/json", **headers}

    async def authorize(self) -> None:
        await self.auth.ready()

    def speaks_messages(self, upstream_model: str) -> bool:
        """Bedrock's Anthropic models take /v1/messages bodies through InvokeModel (bedrock_native)."""
        return native.speaks_messages(upstream_model)

    def count_request(self, body: dict[str, Any], upstream_model: str,
                      betas: tuple[str, ...]) -> HttpRequest:
        """Bedrock's CountTokens for /v1/messages/count_tokens on its Anthropic models."""
        data = native.count_body(body, upstream_model, betas)
        model = native.foundation_model(upstream_model)  # CountTokens takes no inference profile
        url = f"{self.base_url}/model/{quote(model, safe='')}/count-tokens"
        return HttpRequest(url, self.auth.headers(url, self.headers, data), data)

    def count_answer(self, data: bytes) -> bytes:
        return native.count_answer(data)

    def request(self, call: Call) -> HttpRequest:
        if call.native is not None:
            body, action = native.body(call), native.action(call)
        elif call.endpoint is Endpoint.EMBEDDINGS:
            body = orjson.dumps(embeddings.request_body(call.upstream_model, call.body))
            action = "invoke"
        else:
            body = orjson.dumps(translate_request(call))
            action = "converse-stream" if call.body.get("stream") else "converse"
        url = f"{self.base_url}/model/{quote(call.upstream_model, safe='')}/{action}"
        return HttpRequest(url, self.auth.headers(url, self.headers, body), body)

    def response(self, call: Call, body: bytes) -> Reply:
        if call.native is not None:
            return anthropic_native.response(call, body)
        if call.endpoint is Endpoint.EMBEDDINGS:
            listing, usage = embeddings.answer(call.upstream_model, call.body, body)
            return Reply(data=orjson.dumps(listing), usage=usage, text=lambda: "", parsed=listing)
        parsed = parse_answer(body)
        answer = to_chat_completion(parsed, call.upstream_model, json_tool(call.body))
        text = answer["choices"][0]["message"].get("content") or ""
        return Reply(data=orjson.dumps(answer), usage=tokens(parsed.get("usage")),
                     text=lambda: text, parsed=answer)

    def relay(self, call: Call, count: Callable[[str], int]) -> BedrockRelay | BedrockNativeRelay:
        if call.native is not None:
            return BedrockNativeRelay(call.model, count)
        return BedrockRelay(call.upstream_model, json_tool(call.body), call.include_usage, count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return map_error(status, body, retry_after)


def codec(spec: ProviderSpec) -> BedrockCodec:
    auth: RequestAuth = BearerAuth(spec.api_key) if spec.api_key else SigV4(spec.region or DEFAULT_REGION)
    return BedrockCodec(spec.base_url, auth, {"User-Agent": "switchboard-router", **spec.headers})


# --- requests -------------------------------------------------------------------------------

def translate_request(call: Call) -> dict[str, Any]:
    body = call.body
    for name, value in body.items():
        if name not in TRANSLATED and value is not None and value is not False:
            raise _refused(name, f"'{name}' is not supported by this model's provider (Bedrock "
                                 "Converse API); leave it out.")
    if body.get("n") not in (None, 1):
        raise _refused("n", "Bedrock returns one choice: 'n' must be 1.")
    if body.get("parallel_tool_calls") is False:
        raise _refused("parallel_tool_calls", "Bedrock's Converse API cannot turn parallel tool "
                                              "calls off; leave parallel_tool_calls out.")
    system, messages = translate_messages(body.get("messages") or [])
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference(body)
    thinking = _thinking(call.upstream_model, body.get("reasoning_effort"), inference)
    if thinking is not None:
        out["additionalModelRequestFields"] = {"thinking": thinking}
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, messages)
    if tool_config is not None:
        out["toolConfig"] = tool_config
        if thinking is not None and set(tool_config.get("toolChoice") or {}) & {"any", "tool"}:
            # Anthropic's thinking takes tool_choice auto only (and JSON output is a forced tool).
            raise _refused("reasoning_effort", "Bedrock's Claude models cannot think while a tool is forced "
                                               "(tool_choice required or a function, or response_format).")
    user = body.get("user")
    if user:
        if not isinstance(user, str) or not _METADATA_VALUE.fullmatch(user):
            raise InvalidRequest("Bedrock takes 'user' as request metadata: up to 256 letters, digits, "
                                 "spaces and :_@$#=/+,.- only.", param="user", code="invalid_value")
        out["requestMetadata"] = {"user": user}
    return out


def _thinking(model: str, effort: Any, inference: dict[str, Any]) -> dict[str, Any] | None:
    """reasoning_effort as Anthropic's extended thinking, which Bedrock's Claude models take in
    additionalModelRequestFields (as the Anthropic codec budgets it); the answer's
    reasoningContent comes back as reasoning_content. Other Bedrock models: a 400."""
    if effort in (None, "none", "minimal"):
        return None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None or not native.speaks_messages(model):
        raise _refused("reasoning_effort", f"reasoning_effort {effort!r} cannot be sent to this Bedrock "
                                           "model (Anthropic's models on Bedrock take low, medium or high).")
    limit = inference.setdefault("maxTokens", budget + FALLBACK_MAX_TOKENS)
    if limit <= budget:
        raise InvalidRequest(f"With reasoning_effort {effort!r} the model thinks for {budget} tokens, "
                             f"which must be less than max_tokens ({limit}).",
                             param="max_completion_tokens", code="invalid_value")
    return {"type": "enabled", "budget_tokens": budget}


def _refused(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def _inference(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int):
        out["maxTokens"] = limit
    if body.get("temperature") is not None:
        out["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        out["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return out


def translate_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, Converse messages): user first, roles merged, no blank text."""
    return alternating_turns(messages, provider="Bedrock", fields=MESSAGE_FIELDS, system=texts,
                             user=user_blocks, assistant=_assistant_blocks, tool=_tool_result,
                             is_result=lambda b: "toolResult" in b, user_first=True,
                             empty_user="A user message needs some non-blank content for Bedrock.")


def _assistant_blocks(m: dict[str, Any], at: str) -> list[dict[str, Any]]:
    blocks = texts(m.get("content"), f"{at}.content")
    for j, tool_call in enumerate(m.get("tool_calls") or ()):
        function = tool_call.get("function") or {}
        try:
            parsed = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest("A tool call's arguments must be a JSON object to send to Bedrock.",
                                 param=f"{at}.tool_calls[{j}].function.arguments", code="invalid_value")
        blocks.append({"toolUse": {"toolUseId": tool_call.get("id"), "name": function.get("name"),
                                   "input": parsed}})
    return blocks


def _tool_result(m: dict[str, Any], at: str) -> dict[str, Any]:
    result = texts(m.get("content"), f"{at}.content")
    # An empty result still answers its call; Bedrock takes an empty JSON object for it.
    return {"toolResult": {"toolUseId": m.get("tool_call_id"), "content": result or [{"json": {}}],
                           "status": "success"}}


def json_tool(body: dict[str, Any]) -> str | None:
    """The forced tool's name when JSON output was asked for (response_format), else None."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("json_schema", "json_object"):
        return None
    name = ((fmt or {}).get("json_schema") or {}).get("name") if kind == "json_schema" else None
    return name if isinstance(name, str) and _TOOL_NAME.fullmatch(name) else JSON_TOOL


def _json_output_tool(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        return None
    if kind not in ("json_schema", "json_object"):
        raise InvalidRequest(f"Bedrock has no {kind!r} output mode.", param="response_format.type",
                             code="unsupported_value")
    if body.get("tools"):
        raise InvalidRequest("Bedrock gives JSON output through a forced tool, so response_format "
                             "cannot be combined with tools.", param="response_format",
                             code="unsupported_parameter")
    schema: Any = {"type": "object"}
    if kind == "json_schema":
        schema = ((fmt or {}).get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema is required for Bedrock.",
                                 param="response_format.json_schema.schema", code="invalid_value")
    name = json_tool(body) or JSON_TOOL
    spec = {"toolSpec": {"name": name, "description": "Answer with this tool's input: the response, "
                                                      "as JSON fitting the schema.",
                         "inputSchema": {"json": schema}}}
    return spec, {"tool": {"name": name}}


def _tool_config(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    forced = _json_output_tool(body)
    if forced is not None:
        spec, forced_choice = forced
        return {"tools": [spec, *_history_tools(messages, exclude=set())], "toolChoice": forced_choice}
    tools = [_tool(t, i) for i, t in enumerate(body.get("tools") or ())]
    choice = body.get("tool_choice")
    if choice == "none":
        raise _refused("tool_choice", "Bedrock's Converse API has no tool_choice 'none'; leave the "
                                      "tools out instead.")
    if not tools:
        # Bedrock refuses a history with tool blocks unless toolConfig is sent: describe the tools
        # the history used, by name, so an earlier round trip can go on without them.
        history = _history_tools(messages, exclude=set())
        if choice not in (None, "auto"):
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice", code="invalid_value")
        return {"tools": history} if history else None
    out: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        out["toolChoice"] = {"auto": {}}
    elif choice == "required":
        out["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name")}}
    elif choice is not None:
        raise _refused("tool_choice", "Bedrock takes tool_choice auto, required or a function.")
    named = {t["toolSpec"]["name"] for t in tools}
    out["tools"] += _history_tools(messages, exclude=named)
    return out


def _history_tools(messages: list[dict[str, Any]], exclude: set[str]) -> list[dict[str, Any]]:
    names: dict[str, None] = {}
    for m in messages:
        for block in m["content"]:
            name = (block.get("toolUse") or {}).get("name")
            if isinstance(name, str) and name not in exclude:
                names[name] = None
    return [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}} for n in names]


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise InvalidRequest(f"Bedrock takes function tools, not {tool.get('type')!r}.",
                             param=f"tools[{i}].type", code="unsupported_value")
    function = tool.get("function") or {}
    spec: dict[str, Any] = {"name": function.get("name"), "inputSchema": {
        "json": function.get("parameters") or {"type": "object", "properties": {}}}}
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict") is not None:
        spec["strict"] = function["strict"]
    return {"toolSpec": spec}
