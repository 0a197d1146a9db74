"""OpenAI's Responses API answers from Chat Completions: a whole chat.completion as a `response`
object, and the gateway's SSE chunks as the Responses events, in the order the SDK's
`responses.stream()` needs: response.created, response.in_progress, each output item added before
any of its content, its deltas, its done events, then response.completed (or
response.incomplete) with usage and its detail fields. Pure: no I/O. research/providers-wire.md
§6.1.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from switchboard_router.codecs.sse import SseDecoder, encode
from switchboard_router.inbound import call_ids, chat_usage

# What each status-less finish means for the response's status.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

def shell(body: dict[str, Any], *, store: bool = False) -> dict[str, Any]:
    """The response object's fields that echo the request, before any output."""
    text: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    reasoning: dict[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
        "status": "in_progress", "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"), "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": body.get("service_tier") or "auto", "store": store,
        "temperature": body.get("temperature", 1.0), "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": None,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def usage(openai_usage: Any) -> dict[str, Any]:
    """Responses' usage: input_tokens as OpenAI's prompt_tokens (caches included), with the detail
    fields the SDK's types require."""
    u = chat_usage.read(openai_usage)
    return {"input_tokens": u.prompt,
            "input_tokens_details": {"cached_tokens": u.cache_read, "cache_write_tokens": u.cache_write},
            "output_tokens": u.completion,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.prompt + u.completion}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content if status == "completed" or text else []}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


def _finished(shell_: dict[str, Any], output: list[dict[str, Any]], finish: str | None,
              openai_usage: Any) -> dict[str, Any]:
    reason = _INCOMPLETE.get(finish or "")
    return {**shell_, "status": "incomplete" if reason else "completed",
            "incomplete_details": {"reason": reason} if reason else None,
            "output": output, "usage": usage(openai_usage)}


def from_chat(chat: dict[str, Any], shell_: dict[str, Any]) -> dict[str, Any]:
    """A whole chat.completion as a response object."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    reply = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if reply.get("content"):
        output.append(_message_item(f"msg_{uuid.uuid4().hex}", reply["content"], "completed"))
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(_call_item(f"fc_{uuid.uuid4().hex}", call_ids.outgoing(call),
                                 function.get("name") or "", function.get("arguments") or "", "completed"))
    return _finished(shell_, output, choice.get("finish_reason"), chat.get("usage"))


class ResponsesStream:
    """OpenAI chunks (the gateway's SSE) to Responses events, read by read. One per stream.

    Items are addressed by output_index, so several tool calls may grow at once; all items are
    done at the stream's end, in order, before response.completed.
    """

    def __init__(self, shell_: dict[str, Any]) -> None:
        self._decoder = SseDecoder()
        self._shell = shell_
        self._sequence = 0
        self._started = False
        self._items: list[dict[str, Any]] = []  # {"kind", "id", "text"/"arguments", ...}
        self._message: int | None = None  # output index of the text item
        self._calls: dict[int, int] = {}  # OpenAI tool index -> output index
        self._finish: str | None = None
        self._usage: Any = None
        self.done = False
        self.final: dict[str, Any] | None = None  # the response.completed (or .incomplete) object
        self.error: Any = None  # the error event's body when the stream failed midway

    def _emit(self, kind: str, payload: dict[str, Any]) -> bytes:
        out = encode(orjson.dumps({"type": kind, **payload, "sequence_number": self._sequence}), kind)
        self._sequence += 1
        return out

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(data):
            if event.data is None or self.done:
                continue
            if not self._started:
                out.append(self._begin())
            if event.data == b"[DONE]":
                out.append(self._end())
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and not chunk.get("choices"):
                # OpenAI's error event, as on chat completions: the SDK raises it.
                self.done = True
                self.error = chunk["error"]
                out.append(encode(orjson.dumps(chunk), "error"))
                continue
            out.append(self._chunk(chunk))
        return b"".join(out)

    @property
    def started(self) -> bool:
        """Whether the client has been sent the response's id (response.created)."""
        return self._started

    def result(self) -> dict[str, Any]:
        """The response as the client has it: the final one, else (failed midway, or cut) what
        it was sent so far, `failed` with the error or `incomplete`."""
        if self.final is not None:
            return self.final
        output: list[dict[str, Any]] = []
        for item in self._items:
            if item["kind"] == "message":
                if item["text"]:
                    output.append(_message_item(item["id"], item["text"], "incomplete"))
            else:
                output.append(_call_item(item["id"], item["call_id"], item["name"],
                                         item["arguments"], "incomplete"))
        cut = {**self._shell, "output": output, "usage": usage(self._usage)}
        if self.error is not None:
            error = self.error if isinstance(self.error, dict) else {}
            # The Response's error codes are an enum: ours map onto its two generic ones.
            code = "rate_limit_exceeded" if error.get("code") == "rate_limit_exceeded" else "server_error"
            return {**cut, "status": "failed",
                    "error": {"code": code, "message": error.get("message") or ""}}
        return {**cut, "status": "incomplete"}

    def _begin(self) -> bytes:
        self._started = True
        return (self._emit("response.created", {"response": self._shell})
                + self._emit("response.in_progress", {"response": self._shell}))

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.append(self._text(delta["content"]))
            for call in delta.get("tool_calls") or ():
                out.append(self._call(call))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _text(self, text: str) -> bytes:
        out = b""
        if self._message is None:
            self._message = len(self._items)
            item = {"kind": "message", "id": f"msg_{uuid.uuid4().hex}", "text": ""}
            self._items.append(item)
            out = self._emit("response.output_item.added", {
                "output_index": self._message, "item": _message_item(item["id"], "", "in_progress")})
            out += self._emit("response.content_part.added", {
                "item_id": item["id"], "output_index": self._message, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        item = self._items[self._message]
        item["text"] += text
        return out + self._emit("response.output_text.delta", {
            "item_id": item["id"], "output_index": self._message, "content_index": 0,
            "delta": text, "logprobs": []})

    def _call(self, call: dict[str, Any]) -> bytes:
        function = call.get("function") or {}
        out = b""
        index = self._calls.get(call.get("index", 0))
        if index is None:
            index = self._calls[call.get("index", 0)] = len(self._items)
            item = {"kind": "call", "id": f"fc_{uuid.uuid4().hex}", "call_id": call_ids.outgoing(call),
                    "name": function.get("name") or "", "arguments": ""}
            self._items.append(item)
            out = self._emit("response.output_item.added", {"output_index": index, "item": _call_item(
                item["id"], item["call_id"], item["name"], "", "in_progress")})
        item = self._items[index]
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            out += self._emit("response.function_call_arguments.delta", {
                "item_id": item["id"], "output_index": index, "delta": function["arguments"]})
        return out

    def _end(self) -> bytes:
        out: list[bytes] = []
        output: list[dict[str, Any]] = []
        for index, item in enumerate(self._items):
            if item["kind"] == "message":
                done = _message_item(item["id"], item["text"], "completed")
                out.append(self._emit("response.output_text.done", {
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "text": item["text"], "logprobs": []}))
                out.append(self._emit("response.content_part.done", {
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "part": done["content"][0]}))
            else:
                done = _call_item(item["id"], item["call_id"], item["name"], item["arguments"], "completed")
                out.append(self._emit("response.function_call_arguments.done", {
                    "item_id": item["id"], "output_index": index, "name": item["name"],
                    "arguments": item["arguments"]}))
            out.append(self._emit("response.output_item.done", {"output_index": index, "item": done}))
            output.append(done)
        final = _finished(self._shell, output, self._finish, self._usage)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        out.append(self._emit(kind, {"response": final}))
        self.done = True
        self.final = final
        return b"".join(out)
