"""Bedrock's ConverseStream as OpenAI's `chat.completion.chunk`s: the AWS event-stream framing
(application/vnd.amazon.eventstream) decoded by botocore's own EventStreamBuffer, CRCs checked.

Events: messageStart, contentBlockStart (a tool call's id and name), contentBlockDelta (text, a
tool call's input as JSON fragments, reasoning), contentBlockStop, messageStop (the stop reason),
metadata (usage, last); an `exception` message (throttlingException...) may end the stream after
its 200. https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError
from switchboard_common.errors import ApiError, InvalidRequest, RateLimited, UpstreamError

from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.codecs.bedrock_answers import answer_id, finish_reason, openai_usage, tokens
from switchboard_router.codecs.openai import stream_texts
from switchboard_router.codecs.sse import DONE
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Tokens

# In-stream exceptions (the ConverseStreamOutput union's error members) as our errors.
STREAM_ERRORS: dict[str, type[ApiError]] = {
    "throttlingException": RateLimited, "serviceUnavailableException": ProviderOverloaded,
    "validationException": InvalidRequest, "internalServerException": UpstreamError,
    "modelStreamErrorException": UpstreamError,
}


class BedrockRelay:
    """One ConverseStream as OpenAI chunks. Holds only this stream's state: its framing buffer,
    which content block is which tool call, the stop reason and the usage."""

    def __init__(self, model: str, json_name: str | None, forward_usage: bool,
                 count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        self.completion = CompletionCounter(stream_texts, count)
        self._json_name = json_name
        self._forward_usage = forward_usage
        self._buffer = EventStreamBuffer()
        self._head = (b'{"id":' + orjson.dumps(answer_id()) + b',"object":"chat.completion.chunk",'
                      b'"created":' + str(int(time.time())).encode() + b',"model":' +
                      orjson.dumps(model) + b',"choices":')
        self._tool_index: dict[int, int] = {}  # Converse block index -> OpenAI tool-call index
        self._json_blocks: set[int] = set()  # blocks of the forced JSON tool: the answer's text
        self._stopped = False

    def feed(self, read: bytes) -> bytes:
        if self.done or self.error is not None:
            return b""
        self._buffer.add_data(read)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                piece = self._message(message)
                if piece:
                    out.append(piece)
                if self.done or self.error is not None:
                    break
        except ParserError as exc:  # a bad CRC or length: the framing cannot be trusted
            self.error = UpstreamError(f"The provider's event stream is corrupt ({type(exc).__name__}).",
                                       code="invalid_upstream_response")
            out.append(_error_event(self.error))
        data = b"".join(out)
        if data:
            self.completion.add(data)
        return data

    def finish(self) -> bytes:
        if self.done or self.error is not None:
            return b""
        if self._stopped:  # messageStop came, the metadata did not: end without the usage
            self.done = True
            return DONE
        self.error = UpstreamError("The provider ended the stream before the message was complete.")
        return _error_event(self.error)

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _message(self, message: EventStreamMessage) -> bytes:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception":
            name = str(headers.get(":exception-type") or "")
            text = _field(message.payload, "message") or "The provider reported an error during the stream."
            self.error = STREAM_ERRORS.get(name, UpstreamError)(text)
            return _error_event(self.error)
        if kind != "event":  # `error` messages carry :error-code and :error-message headers
            self.error = UpstreamError(str(headers.get(":error-message") or
                                           "The provider reported an error during the stream."))
            return _error_event(self.error)
        try:
            event = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            self.error = UpstreamError("The provider sent a stream event that is not JSON.",
                                       code="invalid_upstream_response")
            return _error_event(self.error)
        return self._event(headers.get(":event-type"), event)

    def _event(self, kind: Any, e: dict[str, Any]) -> bytes:
        if kind == "contentBlockDelta":
            delta = e.get("delta") or {}
            index = e.get("contentBlockIndex", -1)
            if "text" in delta:
                return self._chunk({"content": delta["text"]})
            if "toolUse" in delta:
                fragment = (delta["toolUse"] or {}).get("input") or ""
                if index in self._json_blocks:
                    return self._chunk({"content": fragment}) if fragment else b""
                call = self._tool_index.get(index)
                if call is None or not fragment:
                    return b""
                return self._chunk({"tool_calls": [{"index": call, "function": {"arguments": fragment}}]})
            reasoning = (delta.get("reasoningContent") or {}).get("text")
            return self._chunk({"reasoning_content": reasoning}) if reasoning else b""
        if kind == "contentBlockStart":
            use = (e.get("start") or {}).get("toolUse")
            if not isinstance(use, dict):
                return b""
            index = e.get("contentBlockIndex", -1)
            if self._json_name is not None and use.get("name") == self._json_name:
                self._json_blocks.add(index)
                return b""
            call = len(self._tool_index)
            self._tool_index[index] = call
            return self._chunk({"tool_calls": [{"index": call, "id": use.get("toolUseId"), "type": "function",
                                                "function": {"name": use.get("name"), "arguments": ""}}]})
        if kind == "messageStart":
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "messageStop":
            self._stopped = True
            return self._chunk({}, finish_reason(e.get("stopReason"), self._json_name is not None))
        if kind == "metadata":
            usage = e.get("usage")
            self.usage = tokens(usage)
            if self.usage is not None:
                self.completion.stop()
            self.done = True
            tail = b""
            if self._forward_usage and isinstance(usage, dict):
                tail = b"data: " + self._head + b'[],"usage":' + orjson.dumps(openai_usage(usage)) + b"}\n\n"
            return tail + DONE
        return b""  # contentBlockStop, and event types added later

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + self._head + b"[" + orjson.dumps(choice) + b"]}\n\n"


def _field(payload: bytes, name: str) -> str:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    value = parsed.get(name) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else ""


def _error_event(error: ApiError) -> bytes:
    return b"data: " + orjson.dumps(error.to_openai()) + b"\n\n"
