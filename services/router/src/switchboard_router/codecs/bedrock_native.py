"""Anthropic's Messages API passed through to Bedrock's Anthropic models (inbound/native.py):
InvokeModel and InvokeModelWithResponseStream take Anthropic's body (the model in the path,
`anthropic_version: bedrock-2023-05-31`, betas as `anthropic_beta`) and answer with Anthropic's
message, or its events each in an event-stream `chunk` ({"bytes": base64 of the event's JSON}),
which go out as Anthropic's SSE, each event's JSON as Bedrock gave it.
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError
from switchboard_common.errors import UpstreamError

from switchboard_router.codecs.anthropic_native import NativeRelay
from switchboard_router.codecs.bedrock_stream import STREAM_ERRORS
from switchboard_router.codecs.sse import encode
from switchboard_router.providers.base import Call

VERSION = "bedrock-2023-05-31"


def speaks_messages(model_id: str) -> bool:
    """Anthropic's models, by id or cross-region inference profile (us.anthropic.claude-...)."""
    return model_id.startswith("anthropic.") or ".anthropic." in model_id


def body(call: Call) -> bytes:
    assert call.native is not None, "asked only for a native call"
    out = {k: v for k, v in call.native.items() if k not in ("model", "stream")}
    out["anthropic_version"] = VERSION
    if call.betas:
        out["anthropic_beta"] = list(call.betas)
    return orjson.dumps(out)


# Cross-region inference profiles prefix the foundation model's id with their geography.
PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"})


def foundation_model(model_id: str) -> str:
    """The foundation model of an id that may be a cross-region inference profile's
    (us.anthropic.claude-... -> anthropic.claude-...)."""
    prefix, dot, rest = model_id.partition(".")
    return rest if dot and prefix in PROFILE_PREFIXES else model_id


def count_body(body: dict[str, Any], upstream_model: str, betas: tuple[str, ...]) -> bytes:
    """CountTokens' input for a count_tokens body: the InvokeModel body the model would be sent,
    as a blob (base64 in Converse's JSON). InvokeModel needs max_tokens, which counting ignores:
    the model's default (room for any thinking budget)."""
    from switchboard_router.codecs.anthropic import FALLBACK_MAX_TOKENS, default_max_tokens

    invoke = {k: v for k, v in body.items() if k != "model"}
    invoke["anthropic_version"] = VERSION
    if betas:
        invoke["anthropic_beta"] = list(betas)
    budget = (body.get("thinking") or {}).get("budget_tokens")
    default = default_max_tokens(upstream_model.split("anthropic.", 1)[-1])
    invoke["max_tokens"] = max(default, budget + FALLBACK_MAX_TOKENS) if isinstance(budget, int) else default
    return orjson.dumps({"input": {"invokeModel": {"body": base64.b64encode(orjson.dumps(invoke)).decode()}}})


def count_answer(data: bytes) -> bytes:
    """CountTokens' `{"inputTokens": N}` as Anthropic's count_tokens answer."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    count = parsed.get("inputTokens") if isinstance(parsed, dict) else None
    if not isinstance(count, int):
        raise UpstreamError("The provider returned an answer that is not a token count.",
                            code="invalid_upstream_response")
    return orjson.dumps({"input_tokens": count})


def action(call: Call) -> str:
    return "invoke-with-response-stream" if (call.native or {}).get("stream") else "invoke"


class BedrockNativeRelay:
    """InvokeModelWithResponseStream's chunks as Anthropic's SSE, read through NativeRelay (the
    usage, the end, the errors); an in-stream exception is Anthropic's `event: error`."""

    def __init__(self, model: str, count: Callable[[str], int]) -> None:
        self._inner = NativeRelay(model, count)
        self._buffer = EventStreamBuffer()
        self.completion = self._inner.completion

    @property
    def usage(self) -> Any:
        return self._inner.usage

    @property
    def error(self) -> Any:
        return self._inner.error

    def completion_tokens(self) -> int:
        return self._inner.completion_tokens()

    def feed(self, read: bytes) -> bytes:
        if self._inner.done or self._inner.error is not None:
            return b""
        self._buffer.add_data(read)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                out.append(self._message(message.headers, message.payload))
        except ParserError as exc:  # a bad CRC or length: the framing cannot be trusted
            out.append(self._fail(UpstreamError(
                f"The provider's event stream is corrupt ({type(exc).__name__}).",
                code="invalid_upstream_response")))
        return self._inner.feed(b"".join(out))

    def finish(self) -> bytes:
        return self._inner.finish()

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        if headers.get(":message-type") != "event":
            name = str(headers.get(":exception-type") or "")
            try:
                text = orjson.loads(payload).get("message")
            except (orjson.JSONDecodeError, AttributeError):
                text = None
            return self._fail(STREAM_ERRORS.get(name, UpstreamError)(
                text if isinstance(text, str) and text else
                "The provider reported an error during the stream."))
        try:
            data = base64.b64decode(orjson.loads(payload)["bytes"], validate=True)
            kind = orjson.loads(data)["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            return self._fail(UpstreamError("The provider sent a stream chunk that is not an "
                                            "Anthropic event.", code="invalid_upstream_response"))
        if b"\n" in data:  # an SSE data line holds no newline: the event's JSON made compact
            data = orjson.dumps(orjson.loads(data))
        return encode(data, str(kind))

    def _fail(self, error: Any) -> bytes:
        """The error as Anthropic's event; NativeRelay reads it back (its type maps as Anthropic's)."""
        kind = {"RateLimited": "rate_limit_error", "ProviderOverloaded": "overloaded_error",
                "InvalidRequest": "invalid_request_error"}.get(type(error).__name__, "api_error")
        return encode(orjson.dumps({"type": "error", "error": {"type": kind, "message": error.message}}),
                      "error")
