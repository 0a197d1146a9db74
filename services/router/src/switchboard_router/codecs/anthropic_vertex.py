"""Anthropic's Claude models on Vertex AI: Anthropic's Messages body on Vertex's partner-model
paths, with the Vertex codec's OAuth token (codecs/vertex.py). Pure functions, no I/O.

`POST {base}/{version}/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict`
(streams `:streamRawPredict`, Anthropic's own SSE): the model in the path, not the body, and
`anthropic_version: vertex-2023-10-16` in the body; betas stay the `anthropic-beta` header, as
the `anthropic` SDK's AnthropicVertex sends them. Answers, events and errors inside a stream
are Anthropic's; Vertex's own refusals (OAuth, quota) come in Google's error shape.
count_tokens: `.../publishers/anthropic/models/count-tokens:rawPredict` with the model in the
body. https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude-count-tokens

A /v1/messages body goes through as it came (inbound/native.py); a chat completion is
translated as for Anthropic itself (codecs/anthropic.py) and its answer translated back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import ApiError

from switchboard_router.codecs import anthropic, anthropic_native, anthropic_wire, gemini
from switchboard_router.codecs.anthropic_native import NativeRelay
from switchboard_router.codecs.anthropic_stream import AnthropicRelay
from switchboard_router.codecs.base import HttpRequest
from switchboard_router.providers.base import Call, Reply

VERSION = "vertex-2023-10-16"
COUNT_MODEL = "count-tokens"  # the literal model segment of the count endpoint's path


def is_anthropic(model: str) -> bool:
    """Vertex names Anthropic's models claude-...(@date), as its Model Garden lists them."""
    return model.startswith("claude-")


def _body(body: dict[str, Any]) -> bytes:
    out = {k: v for k, v in body.items() if k != "model"}
    out["anthropic_version"] = VERSION
    return orjson.dumps(out)


def request(prefix: str, headers: dict[str, str], call: Call) -> HttpRequest:
    """`prefix` ends in .../publishers/anthropic/models/; headers carry the Bearer token."""
    if call.native is not None:
        body, stream = call.native, bool(call.native.get("stream"))
    else:
        body = anthropic.translate_request(call)
        stream = bool(body.get("stream"))
    if call.betas:
        headers = {**headers, "anthropic-beta": ",".join(call.betas)}
    method = ":streamRawPredict" if stream else ":rawPredict"
    return HttpRequest(prefix + call.upstream_model + method, headers, _body(body))


def count_request(prefix: str, headers: dict[str, str], body: dict[str, Any], upstream_model: str,
                  betas: tuple[str, ...]) -> HttpRequest:
    """A count_tokens body (already validated) to the count endpoint, the model in the body."""
    if betas:
        headers = {**headers, "anthropic-beta": ",".join(betas)}
    data = orjson.dumps({**body, "model": upstream_model, "anthropic_version": VERSION})
    return HttpRequest(f"{prefix}{COUNT_MODEL}:rawPredict", headers, data)


def response(call: Call, body: bytes) -> Reply:
    if call.native is not None:
        return anthropic_native.response(call, body)
    message = anthropic_wire.message_object(body)
    answer = anthropic_wire.to_chat_completion(message)
    text = answer["choices"][0]["message"].get("content") or ""
    return Reply(data=orjson.dumps(answer), usage=anthropic_wire.tokens(message.get("usage")),
                 text=lambda: text, parsed=answer)


def relay(call: Call, count: Callable[[str], int]) -> AnthropicRelay | NativeRelay:
    if call.native is not None:
        return NativeRelay(call.model, count)
    return AnthropicRelay(forward_usage=call.include_usage, count=count)


def map_error(status: int, body: bytes, retry_after: str | None) -> ApiError:
    """Anthropic's error body when the model refused, Google's when Vertex itself did."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("type") == "error":
        return anthropic_wire.map_error(status, body, retry_after)
    return gemini.map_error(status, body, retry_after)
