"""A fake Anthropic Messages API on loopback, in Anthropic's exact wire format.

    python -m tests.fakes.anthropic_fake --host 127.0.0.1 --port 0 [--port-file PATH]
    fake = await start_anthropic_fake()     # fake.base_url, as ANTHROPIC_BASE_URL takes it

Every request (POST /v1/messages, /v1/messages/count_tokens) is validated against the
`anthropic` SDK's own TypedDicts with extra fields forbidden, plus the rules the types do not
encode (anthropic_rules.py). A request that breaks one gets Anthropic's 400
`invalid_request_error`, so a translation bug fails loudly.

Answers: "Echo: <last user text>" (+ " [N image(s)]" when images were sent); with tools and
"call_tools" in the last user text, one tool_use per tool (parallel calls); with "call_tool",
the first tool; after tool results, "Echo: " + the results joined by " | "; with
output_config.format, a JSON object fitting the schema. Usage: words of the prompt (cached half
of it as cache_read_input_tokens when a cache_control is set, as cache_creation_input_tokens
with `cache-write`) and one output token per piece; thinking enabled: a thinking block first,
signed (its signature must come back with it). count_tokens: words of the prompt, plus each
tool's JSON in 8-byte pieces.

Failures, as `[fake:...]` markers in the last user text or a `+...` model suffix: error-<status>
(400, 401, 403, 404, 413, 429 with retry-after, 500, 529 overloaded), error-event (an `error`
event after the first text, in a write of its own), error-first (an `error` event right after
message_start and ping), abort-mid-stream, slow-<ms>, cache-write.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from tests.fakes.fake_server import FakeServer, json_or_none, serve_main
from tests.fakes.anthropic_rules import ERRORS, SIGNATURE, Refusal, error_body, validate

VERSIONS = frozenset({"2023-06-01", "2026-10-21"})  # SDK <= 1.17 and >= 2.0 send these
_MARKER = re.compile(r"\[fake:([^\]]+)\]")
_WORD = re.compile(r"\s*\S+")
_SAMPLE = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}


class Recorded(NamedTuple):
    path: str
    headers: dict[str, str]
    json: Any


# --- answers --------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    pieces = _WORD.findall(text)
    return pieces or [text]


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for b in content:
        if b["type"] == "text":
            out.append(b["text"])
        elif b["type"] == "tool_result":
            out += _texts(b.get("content") or "")
    return out


def prompt_tokens(body: dict[str, Any]) -> int:
    system = body.get("system") or ""
    words = sum(len(t.split()) for t in _texts(system))
    return words + sum(len(t.split()) for m in body["messages"] for t in _texts(m["content"]))


def _sample(schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: _sample(v) for k, v in (schema.get("properties") or {}).items()}
    return _SAMPLE.get(kind, "fake") if isinstance(kind, str) else "fake"


def answer(body: dict[str, Any], ids: Iterable[str]) -> tuple[list[dict[str, Any]], str]:
    """(content blocks, stop_reason) for a valid request."""
    last = body["messages"][-1]
    blocks = [{"type": "text", "text": last["content"]}] if isinstance(last["content"], str) else last["content"]
    results = [t for b in blocks if b["type"] == "tool_result" for t in _texts(b.get("content") or "")]
    text = " ".join(b["text"] for b in blocks if b["type"] == "text")
    images = sum(1 for b in blocks if b["type"] == "image")
    tools = [t for t in body.get("tools") or () if "input_schema" in t]
    choice = (body.get("tool_choice") or {}).get("type")
    if tools and not results and choice != "none" and (
            "call_tool" in text or choice in ("any", "tool")):
        chosen = tools if "call_tools" in text and not (body.get("tool_choice") or {}).get(
            "disable_parallel_tool_use") else tools[:1]
        return [{"type": "tool_use", "id": next(iter(ids)), "name": t["name"],
                 "input": _sample(t["input_schema"])} for t in chosen], "tool_use"
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        reply = orjson.dumps(_sample(fmt["schema"])).decode()
    elif results:
        reply = "Echo: " + " | ".join(results)
    else:
        reply = "Echo: " + _MARKER.sub("", text).strip() + (f" [{images} image(s)]" if images else "")
    content: list[dict[str, Any]] = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        content.append({"type": "thinking", "thinking": "Thinking about it.", "signature": SIGNATURE})
    pieces = _words(reply)
    stop = "end_turn"
    if len(pieces) > body["max_tokens"]:
        pieces, stop = pieces[:body["max_tokens"]], "max_tokens"
    for s in body.get("stop_sequences") or ():
        joined = "".join(pieces)
        if s in joined:
            pieces, stop = _words(joined[:joined.index(s)]) if joined.index(s) else [""], "stop_sequence"
            break
    content.append({"type": "text", "text": "".join(pieces)})
    return content, stop


def usage(body: dict[str, Any], content: list[dict[str, Any]], *, write: bool = False) -> dict[str, Any]:
    """`write`: the cached half is written to the cache (cache_creation_input_tokens), not read."""
    total = prompt_tokens(body)
    cached = total // 2 if b"cache_control" in orjson.dumps(body) else 0
    output = sum(len(_words(b["text"])) for b in content if b["type"] == "text") + sum(
        len(_arg_pieces(b["input"])) for b in content if b["type"] == "tool_use")
    return {"input_tokens": total - cached, "cache_creation_input_tokens": cached if write else 0,
            "cache_read_input_tokens": 0 if write else cached, "output_tokens": output,
            "service_tier": "standard"}


def _arg_pieces(value: Any) -> list[str]:
    raw = orjson.dumps(value).decode()
    return [raw[i:i + 8] for i in range(0, len(raw), 8)] or [""]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event("content_block_delta", {"index": index, "delta": delta})


def _block_events(index: int, block: dict[str, Any], error_event: bool) -> tuple[list[bytes], bool]:
    """One content block's events; True when an injected error ended the stream inside it."""
    if block["type"] == "text":
        events = [_event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})]
        for piece in _words(block["text"]):
            events.append(_delta(index, {"type": "text_delta", "text": piece}))
            if error_event:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                return [*events, _event("error", {"error": error})], True
    elif block["type"] == "thinking":
        events = [_event("content_block_start", {"index": index, "content_block": {
                      "type": "thinking", "thinking": "", "signature": ""}}),
                  _delta(index, {"type": "thinking_delta", "thinking": block["thinking"]}),
                  _delta(index, {"type": "signature_delta", "signature": block["signature"]})]
    else:
        events = [_event("content_block_start", {"index": index, "content_block": {**block, "input": {}}})]
        events += [_delta(index, {"type": "input_json_delta", "partial_json": piece})
                   for piece in ["", *_arg_pieces(block["input"])]]
    return [*events, _event("content_block_stop", {"index": index})], False


def stream_events(message: dict[str, Any], error_event: bool) -> list[bytes]:
    """Anthropic's event sequence for a whole message, with a `ping` as the real API sends."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events = [_event("message_start", {"message": start}), _event("ping", {})]
    for index, block in enumerate(message["content"]):
        more, ended = _block_events(index, block, error_event)
        events += more
        if ended:
            return events
    events.append(_event("message_delta", {
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    events.append(_event("message_stop", {}))
    return events


# --- the server -----------------------------------------------------------------------------

class AnthropicFake(FakeServer):
    def __init__(self, api_keys: Iterable[str] | None = None) -> None:
        super().__init__()
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.requests: list[Recorded] = []

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        return app

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json_or_none(raw)
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        try:
            self._authenticate(request)
            behavior = self._behavior(body)
            validate(body)
        except Refusal as r:
            return web.Response(status=r.status, body=error_body(r.status, r.message),
                                headers={"Content-Type": "application/json", **r.headers})
        if behavior.get("slow"):
            await asyncio.sleep(behavior["slow"])
        content, stop = answer(body, _Ids(self))
        message = {"id": self._id("msg_"), "type": "message", "role": "assistant", "model": body["model"],
                   "content": content, "stop_reason": stop, "stop_sequence": None,
                   "usage": usage(body, content, write=bool(behavior.get("cache-write")))}
        headers = {"request-id": self._id("req_"), "anthropic-organization-id": "org-fake"}
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(message), headers={"Content-Type": "application/json", **headers})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", **headers})
        await response.prepare(request)
        events = stream_events(message, error_event=bool(behavior.get("error-event")))
        if behavior.get("error-first"):  # overloaded as soon as the stream began
            events = [*events[:2], _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})]
        if behavior.get("abort-mid-stream"):
            for event in events[:3]:
                await response.write(event)
            if request.transport is not None:
                request.transport.close()
            return response
        if behavior.get("error-event"):  # the error in a write of its own, as a late failure
            await response.write(b"".join(events[:-1]))
            await asyncio.sleep(0.05)
            events = events[-1:]
        await response.write(b"".join(events))
        await response.write_eof()
        return response

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """The prompt's words (system, text, tool results) and each tool's JSON in 8-byte pieces,
        so that a count from here is told apart from the gateway's local estimate."""
        raw = await request.read()
        body = json_or_none(raw)
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        try:
            self._authenticate(request)
            self._behavior(body)
            validate(body, counting=True)
        except Refusal as r:
            return web.Response(status=r.status, body=error_body(r.status, r.message),
                                headers={"Content-Type": "application/json", **r.headers})
        count = prompt_tokens(body) + sum(len(_arg_pieces(t)) for t in body.get("tools") or ())
        return web.Response(body=orjson.dumps({"input_tokens": count}),
                            headers={"Content-Type": "application/json"})

    def _authenticate(self, request: web.Request) -> None:
        if request.headers.get("anthropic-version") not in VERSIONS:
            raise Refusal(400, "anthropic-version: header is required")
        key = request.headers.get("x-api-key") or ""
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        key = key or (bearer.strip() if scheme.lower() == "bearer" else "")
        if not key or (self.api_keys is not None and key not in self.api_keys):
            raise Refusal(401, "invalid x-api-key")

    @staticmethod
    def _behavior(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            return {}
        specs: list[str] = []
        model = body.get("model")
        if isinstance(model, str) and "+" in model:
            body["model"], _, suffix = model.partition("+")
            specs += suffix.split("+")
        messages = body.get("messages") or []
        if messages and isinstance(messages[-1], dict):
            specs += [w for found in _MARKER.findall(" ".join(_texts(messages[-1].get("content") or "")))
                      for w in found.split(",")]
        out: dict[str, Any] = {}
        for word in filter(None, (s.strip() for s in specs)):
            kind, _, arg = word.partition("-")
            if kind == "error" and arg.isdigit() and int(arg) in ERRORS:
                status = int(arg)
                headers = {"retry-after": "7"} if status in (429, 529) else {}
                raise Refusal(status, {529: "Overloaded", 429: "Number of request tokens has exceeded "
                                       "your per-minute rate limit"}.get(status, f"fake error {status}"), headers)
            if kind == "slow" and arg.isdigit():
                out["slow"] = int(arg) / 1000
            elif word in ("error-event", "error-first", "abort-mid-stream", "cache-write"):
                out[word] = True
            else:
                raise Refusal(400, f"unknown fake behavior {word!r}")
        return out



class _Ids:
    """Tool-use ids, unique per fake and per call."""

    def __init__(self, fake: AnthropicFake) -> None:
        self._fake = fake

    def __iter__(self) -> _Ids:
        return self

    def __next__(self) -> str:
        return self._fake._id("toolu_")


async def start_anthropic_fake(api_keys: Iterable[str] | None = None) -> AnthropicFake:
    return await AnthropicFake(api_keys).start()


def main() -> None:
    serve_main(__doc__.splitlines()[0], lambda args: AnthropicFake())


if __name__ == "__main__":
    main()
