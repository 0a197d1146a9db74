"""Chat Completions' answers as Anthropic's Messages API: a whole `message`, or its named SSE
events (message_start with a local input-token estimate, every block started and stopped in turn,
message_delta with the provider's exact counts, message_stop). Pure functions of JSON and bytes.
research/providers-wire.md §1, §6.2. The request side is messages.py."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from switchboard_common.errors import UpstreamError

from switchboard_router.codecs.sse import SseDecoder, encode
from switchboard_router.inbound import call_ids, chat_usage
from switchboard_router.inbound.messages import stream_error

# OpenAI's finish_reason as Anthropic's stop_reason. "stop" covers both end_turn and a stop
# sequence: OpenAI does not say which (research §1.5.4), so it reads as end_turn.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


def message_id(chat_id: Any) -> str:
    """Anthropic's own id when the provider was Anthropic; else one of the same shape."""
    if isinstance(chat_id, str) and chat_id.startswith("msg_"):
        return chat_id
    return f"msg_{uuid.uuid4().hex}"


def usage(openai_usage: Any) -> dict[str, int]:
    """OpenAI's prompt_tokens includes cached tokens; Anthropic's input_tokens excludes both cache
    reads and writes (a disjoint partition, research §1.5.2)."""
    u = chat_usage.read(openai_usage)
    return {"input_tokens": max(0, u.prompt - u.cache_read - u.cache_write),
            "cache_creation_input_tokens": u.cache_write, "cache_read_input_tokens": u.cache_read,
            "output_tokens": u.completion}


def _arguments(text: Any) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        raise UpstreamError("The provider sent tool arguments that are not JSON.",
                            code="invalid_upstream_response") from None


def from_chat(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole chat.completion as Anthropic's message."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reply.get("content"):
        content.append({"type": "text", "text": reply["content"]})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call_ids.outgoing(call), "name": function.get("name"),
                        "input": _arguments(function.get("arguments"))})
    return {"id": message_id(chat.get("id")), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop",
                                                                "end_turn"),
            "stop_sequence": None, "usage": usage(chat.get("usage"))}


class MessagesStream:
    """OpenAI chunks (the gateway's SSE) to Anthropic's events, read by read. One per stream.

    Blocks never interleave: a text or tool call opens a block after closing the one before. A
    tool call's later fragments continue its block; one arriving for a tool already closed (OpenAI
    allows interleaving, Anthropic does not) is a provider error rather than a wrong stream.
    """

    def __init__(self, model: str, input_estimate: int) -> None:
        self._decoder = SseDecoder()
        self._model = model
        self._estimate = max(1, input_estimate)  # never 0: clients show it as the context size
        self._started = False
        self._index = -1
        self._open: str | int | None = None  # "text", an OpenAI tool index, or nothing
        self._closed_tools: set[int] = set()
        self._stop: str | None = None
        self._usage: Any = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(data):
            if event.data is None or self.done:
                continue
            if event.data == b"[DONE]":
                out.append(self._finish())
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and not chunk.get("choices"):
                out.append(self._error(chunk["error"]))
                continue
            try:
                out.append(self._chunk(chunk))
            except UpstreamError as exc:  # a stream Anthropic's events cannot carry
                out.append(self._error({"type": exc.error_type, "message": exc.message}))
        return b"".join(out)

    def _emit(self, kind: str, payload: dict[str, Any]) -> bytes:
        return encode(orjson.dumps({"type": kind, **payload}), kind)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")), "type": "message", "role": "assistant",
            "model": self._model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._estimate, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}
        return self._emit("message_start", {"message": message}) + self._emit("ping", {})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        if isinstance(self._open, int):
            self._closed_tools.add(self._open)
        self._open = None
        return self._emit("content_block_stop", {"index": self._index})

    def _open_block(self, kind: str | int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        return out + self._emit("content_block_start", {"index": self._index, "content_block": block})

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        out = [b"" if self._started else self._start(chunk)]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self._open != "text":
                    out.append(self._open_block("text", {"type": "text", "text": ""}))
                out.append(self._emit("content_block_delta", {"index": self._index, "delta": {
                    "type": "text_delta", "text": delta["content"]}}))
            for call in delta.get("tool_calls") or ():
                out.append(self._tool_delta(call))
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
                out.append(self._close())
        return b"".join(out)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        if self._open != index:
            if index in self._closed_tools:
                raise UpstreamError("The provider interleaved tool calls, which Anthropic's stream "
                                    "cannot carry.", code="invalid_upstream_response")
            out = self._open_block(index, {"type": "tool_use",
                                           "id": call_ids.outgoing(call) or f"toolu_{uuid.uuid4().hex}",
                                           "name": function.get("name") or "", "input": {}})
        if function.get("arguments"):
            out += self._emit("content_block_delta", {"index": self._index, "delta": {
                "type": "input_json_delta", "partial_json": function["arguments"]}})
        return out

    def _finish(self) -> bytes:
        out = [b"" if self._started else self._start({}), self._close()]
        counts = usage(self._usage)
        out.append(self._emit("message_delta", {
            "delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None},
            "usage": counts}))
        out.append(self._emit("message_stop", {}))
        self.done = True
        return b"".join(out)

    def _error(self, error: Any) -> bytes:
        """An error after the 200: Anthropic's `event: error`, which the SDK raises."""
        self.done = True
        return self._emit("error", {"error": stream_error(error)})
