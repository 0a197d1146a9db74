"""OpenAI's Responses API (`POST /v1/responses`, stateless) as Chat Completions and back: pure
functions of JSON and bytes, no I/O.

The request's input items become chat messages (every field carried or refused by name); the
answer, whole or streamed, becomes a `response` object and its events in the order the SDK's
`responses.stream()` needs: response.created, response.in_progress, each output item added
before any of its content, its deltas, its done events, then response.completed (or
response.incomplete) with usage and its detail fields. research/providers-wire.md §6.1.

Stored responses (`store: true`, `previous_response_id`, `conversation`) are refused with a 400:
nothing stores them yet, and a chain accepted but not replayed would answer without its history.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.sse import SseDecoder, encode
from switchboard_router.inbound import call_ids

_REFUSED = {
    "previous_response_id": "stored responses are not kept by this gateway yet; send the whole "
                            "conversation in 'input'",
    "conversation": "conversations are not kept by this gateway yet; send the whole conversation "
                    "in 'input'",
    "prompt": "stored prompts are not supported through this gateway",
    "top_logprobs": "logprobs are not translated to the Responses API yet",
    "max_tool_calls": "max_tool_calls is not enforced by this gateway",
    "prompt_cache_key": "prompt_cache_key is not forwarded by this gateway",
    "prompt_cache_retention": "prompt_cache_retention is not forwarded by this gateway",
    "safety_identifier": "safety_identifier is not forwarded by this gateway; use 'user'",
    "context_management": "context management is not supported through this gateway",
}
_KNOWN = {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
          "tool_choice", "parallel_tool_calls", "text", "reasoning", "user", "metadata", "store",
          "stream", "stream_options", "include", "truncation", "background", "service_tier"}
# What each status-less finish means for the response's status.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _refuse(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{name}' is not supported: {why}.", param=name, code="unsupported_parameter")


# --- request -------------------------------------------------------------------------------------

def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions body for a Responses body."""
    for name, value in body.items():
        if name in _REFUSED and value is not None:
            raise _refuse(name, _REFUSED[name])
        if name not in _KNOWN and name not in _REFUSED:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    _refuse_unsupported(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                             code="missing_required_parameter")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string.", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages += input_messages(body.get("input"))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    for name, to in (("max_output_tokens", "max_completion_tokens"), ("temperature", "temperature"),
                     ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls"),
                     ("user", "user"), ("service_tier", "service_tier")):
        if body.get(name) is not None:
            chat[to] = body[name]
    if body.get("tools"):
        if not isinstance(body["tools"], list):
            raise InvalidRequest("'tools' must be a list.", param="tools")
        chat["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    text = body.get("text")
    if text is not None:
        fmt = _response_format(text)
        if fmt is not None:
            chat["response_format"] = fmt
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or set(reasoning) - {"effort", "summary", "generate_summary"}:
            raise InvalidRequest("'reasoning' takes effort only.", param="reasoning")
        for name in ("summary", "generate_summary"):
            if reasoning.get(name) is not None:
                raise _refuse(f"reasoning.{name}", "reasoning summaries are not translated from "
                                                   "Chat Completions")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # response.completed carries usage
    return chat


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if body.get("store") is True:
        raise _refuse("store", "stored responses are not kept by this gateway yet; send "
                               "store: false (or leave it out) and the whole conversation in 'input'")
    if body.get("background") is True:
        raise _refuse("background", "background responses are not supported through this gateway")
    if body.get("include"):
        raise _refuse("include", "no extra output data can be included through this gateway")
    if body.get("truncation") not in (None, "disabled"):
        raise _refuse("truncation", "only 'disabled' is supported")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"include_obfuscation"}:
            raise InvalidRequest("'stream_options' takes include_obfuscation only.", param="stream_options")
        if options.get("include_obfuscation") is True:
            raise _refuse("stream_options.include_obfuscation", "stream obfuscation is not added "
                                                                "by this gateway")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("'metadata' must be an object.", param="metadata")


def input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("Missing required parameter: 'input' (a string or a list of items).",
                             param="input", code="missing_required_parameter")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{at}' must be an object.", param=at)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, at))
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise InvalidRequest(f"Missing required parameter: '{at}.{name}'.", param=f"{at}.{name}")
            call_id, extra = call_ids.incoming(item["call_id"])
            call = {"id": call_id, "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            if extra is not None:
                call["extra_content"] = extra
            if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)
            elif out and out[-1]["role"] == "assistant" and out[-1].get("content") is not None:
                out[-1]["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = "".join(_text_part(p, f"{at}.output[{j}]", ("input_text",))
                                 for j, p in enumerate(output))
            if not isinstance(item.get("call_id"), str) or not isinstance(output, str):
                raise InvalidRequest(f"'{at}' needs call_id and a text output.", param=at)
            out.append({"role": "tool", "tool_call_id": call_ids.call_id_only(item["call_id"]),
                        "content": output})
        else:
            raise InvalidRequest(f"Input items of type '{kind}' are not supported through this "
                                 "gateway (message, function_call and function_call_output are).",
                                 param=f"{at}.type")
    return out


def _text_part(part: Any, at: str, kinds: tuple[str, ...]) -> str:
    if not isinstance(part, dict) or part.get("type") not in kinds or not isinstance(part.get("text"), str):
        raise InvalidRequest(f"'{at}' must be a text part ({', '.join(kinds)}).", param=at)
    return part["text"]


def _message(item: dict[str, Any], at: str) -> dict[str, Any]:
    extra = set(item) - {"type", "role", "content", "id", "status"}
    if extra:
        raise InvalidRequest(f"Unknown parameter: '{at}.{sorted(extra)[0]}'.", param=f"{at}.{sorted(extra)[0]}")
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "system", "developer", "assistant"):
        raise InvalidRequest(f"'{at}.role' must be user, system, developer or assistant.", param=f"{at}.role")
    role = "system" if role == "developer" else role  # every chat provider reads system
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"'{at}.content' must be a string or a list of parts.", param=f"{at}.content")
    if role == "assistant":
        texts = [_text_part(p, f"{at}.content[{j}]", ("output_text",)) for j, p in enumerate(content)]
        return {"role": "assistant", "content": "".join(texts)}
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{at}.content[{j}]"
        if isinstance(part, dict) and part.get("type") == "input_image":
            if not isinstance(part.get("image_url"), str) or part.get("file_id"):
                raise InvalidRequest(f"'{where}' needs an image_url (file ids are not supported).",
                                     param=where)
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") not in (None, "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": _text_part(part, where, ("input_text",))})
    return {"role": role, "content": parts}


def _tool(tool: Any, at: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise InvalidRequest(f"'{at}': only function tools can be translated; built-in tools are "
                             "not supported through this gateway.", param=at)
    extra = set(tool) - {"type", "name", "description", "parameters", "strict"}
    if extra or not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"'{at}' must be a function tool with a name.", param=at)
    function: dict[str, Any] = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("'tool_choice' must be auto, none, required or a function.", param="tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise InvalidRequest("'text' takes format only.", param="text")
    if text.get("verbosity") is not None:
        raise _refuse("text.verbosity", "verbosity is not translated to Chat Completions")
    fmt = text.get("format")
    if fmt is None or fmt == {"type": "text"}:
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest("'text.format' must be text, json_object or json_schema.", param="text.format")


# --- answer --------------------------------------------------------------------------------------

def shell(body: dict[str, Any]) -> dict[str, Any]:
    """The response object's fields that echo the request, before any output."""
    text: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    reasoning: dict[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
        "status": "in_progress", "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"), "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None, "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": body.get("service_tier") or "auto", "store": False,
        "temperature": body.get("temperature", 1.0), "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": None,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def usage(openai_usage: Any) -> dict[str, Any]:
    u = openai_usage if isinstance(openai_usage, dict) else {}
    prompt = (u.get("prompt_tokens_details") or {})
    completion = (u.get("completion_tokens_details") or {})
    inputs, outputs = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
    return {"input_tokens": inputs,
            "input_tokens_details": {"cached_tokens": prompt.get("cached_tokens") or 0,
                                     "cache_write_tokens": prompt.get("cache_creation_tokens") or 0},
            "output_tokens": outputs,
            "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
            "total_tokens": inputs + outputs}


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
                out.append(encode(orjson.dumps(chunk), "error"))
                continue
            out.append(self._chunk(chunk))
        return b"".join(out)

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
        return b"".join(out)
