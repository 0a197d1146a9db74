"""A fake Gemini API (and Vertex AI's Gemini paths) on loopback, in Google's exact wire format.

    python -m tests.fakes.gemini_fake --host 127.0.0.1 --port 0 [--port-file PATH] [--vertex-key PEM]
    fake = await start_gemini_fake()     # fake.base_url, as GEMINI_BASE_URL takes it

Paths: `/{v1beta|v1}/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` with the
key in `x-goog-api-key`; Vertex's `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/
models/{model}:...` with a Bearer token this fake issued at `POST /token` or `POST /sts`
(google_tokens.py: service-account, authorized-user and workload-identity grants).

Every request body is parsed into the official proto of its API version and checked against the
rules the proto does not encode (gemini_rules.py); Vertex paths use the v1beta protos (they share
the generateContent body). Embeddings: embedContent, batchEmbedContents and Vertex's predict
(gemini_embeddings.py). A request that breaks a rule gets Google's 400 INVALID_ARGUMENT.
Vertex's Anthropic models (`publishers/anthropic/models/...:rawPredict`) are vertex_anthropic.py's.

Answers: "Echo: <last user text>" (+ " [N image(s)]" for inlineData/fileData images); with tools
and "call_tools" in the last user text, one functionCall per function (parallel calls, no ids,
as Gemini often sends; a thoughtSignature on the first); "call_tool": the first function only;
after function responses "Echo: " + their results joined by " | "; with a JSON schema, an object
fitting it; with thinking asked, a thought part. finishReason is STOP for function calls too, as
Gemini's is. Usage counts words: prompt words, one candidate token per piece, cached half the
prompt when `[fake:cached]` is in the text, thoughts counted apart.

Failures, as `[fake:...]` markers in the last user text or a `+...` model suffix: error-<status>
(400, 401, 403, 404, 429 with RetryInfo and QuotaFailure, 500, 503), error-event (an error frame
after the first piece), abort-mid-stream, slow-<ms>, hang, blocked (prompt blocked: no
candidates), safety (finishReason SAFETY), malformed-call (MALFORMED_FUNCTION_CALL).
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from tests.fakes import gemini_embeddings as embeddings
from tests.fakes import vertex_anthropic
from tests.fakes.google_tokens import GoogleTokens
from tests.fakes.fake_server import FakeServer, json_or_none, serve_main
from tests.fakes.gemini_rules import MESSAGES, STATUSES, Refusal, _field, error_body, quota_details, signature, validate

_MARKER = re.compile(r"\[fake:([^\]]+)\]")
_WORD = re.compile(r"\s*\S+")
_SAMPLE = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}


class Recorded(NamedTuple):
    path: str
    headers: dict[str, str]
    json: Any


# --- answers --------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return _WORD.findall(text) or [text]


def _texts(parts: Iterable[dict[str, Any]]) -> list[str]:
    out = []
    for p in parts:
        if isinstance(p.get("text"), str):
            out.append(p["text"])
        response = _field(p, "functionResponse")
        if response:
            result = (response.get("response") or {}).get("result")
            out.append(result if isinstance(result, str) else orjson.dumps(response.get("response")).decode())
    return out


def prompt_tokens(body: dict[str, Any]) -> int:
    system = _field(body, "systemInstruction") or {}
    texts = _texts(system.get("parts") or ()) + [t for c in body["contents"] for t in _texts(c["parts"])]
    return sum(len(t.split()) for t in texts)


def _sample(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "fake"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "")).lower()
    if kind == "object":
        return {k: _sample(v) for k, v in (schema.get("properties") or {}).items()}
    return _SAMPLE.get(kind, "fake")


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(parts, finishReason) for a valid request."""
    parts = body["contents"][-1]["parts"]
    results = [t for p in parts if _field(p, "functionResponse") for t in _texts([p])]
    text = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    images = sum(1 for p in parts if (_field(p, "inlineData") or _field(p, "fileData") or {}).get(
        "mimeType", "").startswith("image/"))
    functions = [fn for t in body.get("tools") or () for fn in _field(t, "functionDeclarations") or ()]
    mode = ((_field(body, "toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    config = _field(body, "generationConfig") or {}
    out: list[dict[str, Any]] = []
    if (_field(config, "thinkingConfig") or {}).get("includeThoughts"):
        out.append({"text": "Thinking about it.", "thought": True})
    if functions and not results and mode != "NONE" and ("call_tool" in text or mode == "ANY"):
        chosen = functions if "call_tools" in text else functions[:1]
        calls: list[dict[str, Any]] = [{"functionCall": {"name": fn["name"], "args": _sample(
            _field(fn, "parametersJsonSchema") or fn.get("parameters"))}} for fn in chosen]
        calls[0]["thoughtSignature"] = signature(chosen[0]["name"])  # on the first call, as Gemini 3
        return out + calls, "STOP"
    schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
    if schema is not None:
        reply = orjson.dumps(_sample(schema)).decode()
    elif _field(config, "responseMimeType") == "application/json":
        reply = orjson.dumps({"echo": _MARKER.sub("", text).strip()}).decode()
    elif results:
        reply = "Echo: " + " | ".join(results)
    else:
        reply = "Echo: " + _MARKER.sub("", text).strip() + (f" [{images} image(s)]" if images else "")
    pieces = _words(reply)
    finish = "STOP"
    limit = _field(config, "maxOutputTokens")
    if isinstance(limit, int) and len(pieces) > limit:
        pieces, finish = pieces[:limit], "MAX_TOKENS"
    for s in _field(config, "stopSequences") or ():
        joined = "".join(pieces)
        if s in joined:
            pieces = _words(joined[:joined.index(s)]) if joined.index(s) else [""]
            break
    return [*out, {"text": "".join(pieces)}], finish


def usage(body: dict[str, Any], parts: list[dict[str, Any]], cached: bool) -> dict[str, Any]:
    prompt = prompt_tokens(body)
    thoughts = sum(len(_words(p["text"])) for p in parts if p.get("thought"))
    candidates = sum(len(_words(p["text"])) for p in parts if "text" in p and not p.get("thought")) + \
        sum(len(_arg_pieces(p["functionCall"]["args"])) for p in parts if "functionCall" in p)
    out: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                           "totalTokenCount": prompt + candidates + thoughts,
                           "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if cached:
        out["cachedContentTokenCount"] = prompt // 2
        out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt // 2}]
    return out


def _arg_pieces(value: Any) -> list[str]:
    raw = orjson.dumps(value).decode()
    return [raw[i:i + 8] for i in range(0, len(raw), 8)] or [""]


def response(parts: list[dict[str, Any]], finish: str, use: dict[str, Any], model: str,
             response_id: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "finishReason": finish,
                                 "index": 0}
    if finish == "SAFETY":
        candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                                       "blocked": True}]
    return {"candidates": [candidate], "usageMetadata": use, "modelVersion": model, "responseId": response_id}


def stream_frames(parts: list[dict[str, Any]], finish: str, use: dict[str, Any], model: str,
                  response_id: str) -> list[dict[str, Any]]:
    """The frames of a stream: a text part split into pieces, function calls whole, the prompt's
    usage on every frame and the full usage with finishReason on the last, which after function
    calls carries no parts (as Gemini's does)."""
    frames: list[dict[str, Any]] = []
    head = {"promptTokenCount": use["promptTokenCount"], "totalTokenCount": use["promptTokenCount"]}
    for part in parts:
        pieces = [{**part, "text": w} for w in _words(part["text"])] if "text" in part else [part]
        frames += [{"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
                    "usageMetadata": head, "modelVersion": model, "responseId": response_id} for p in pieces]
    last: dict[str, Any] = {"finishReason": finish, "index": 0}
    if not any("functionCall" in p for p in parts) and frames:
        last["content"] = frames.pop()["candidates"][0]["content"]
    frames.append({"candidates": [last], "usageMetadata": use, "modelVersion": model, "responseId": response_id})
    return frames


def sse_frame(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"  # Gemini ends its events with CRLF


# --- the server -----------------------------------------------------------------------------

class GeminiFake(FakeServer):
    def __init__(self, api_keys: Iterable[str] | None = None, vertex_public_key: bytes | None = None) -> None:
        super().__init__()
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.google_tokens = GoogleTokens(vertex_public_key)  # Vertex's credentials
        self.requests: list[Recorded] = []

    @property
    def tokens_issued(self) -> int:
        return self.google_tokens.issued

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        self.google_tokens.add_routes(app)
        app.router.add_post("/{version}/models/{call}", self._gemini)
        app.router.add_post("/{version}/projects/{project}/locations/{location}/publishers/google/models/{call}",
                            self._vertex)
        app.router.add_post(vertex_anthropic.PATH, self._vertex_anthropic)
        return app

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        if version not in ("v1", "v1beta"):
            return web.Response(status=404, text="Not Found")
        if request.match_info["call"].partition(":")[2] in embeddings.GEMINI_METHODS:
            return await self._embed(request, version, vertex=False)
        return await self._generate(request, version, vertex=False)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        if version not in ("v1", "v1beta1"):
            return web.Response(status=404, text="Not Found")
        if request.match_info["call"].endswith(":predict"):
            return await self._embed(request, version, vertex=True)
        return await self._generate(request, version, vertex=True)

    async def _vertex_anthropic(self, request: web.Request) -> web.StreamResponse:
        return await vertex_anthropic.serve(self, request)

    async def _embed(self, request: web.Request, version: str, vertex: bool) -> web.Response:
        body = json_or_none(await request.read())
        self.requests.append(Recorded(request.path_qs, dict(request.headers), body))
        model, _, method = request.match_info["call"].partition(":")
        try:
            self._authenticate(request, vertex)
            model, _ = self._behavior(model, None)  # failures as a +suffix on the model
            answer = embeddings.vertex_answer(model, body) if vertex else \
                embeddings.gemini_answer(model, method, version, body)
        except Refusal as r:
            return web.Response(status=r.status, body=error_body(r.status, r.message, r.details, array=vertex),
                                content_type="application/json")
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def _generate(self, request: web.Request, version: str, vertex: bool) -> web.StreamResponse:
        raw = await request.read()
        body = json_or_none(raw)
        self.requests.append(Recorded(request.path_qs, dict(request.headers), body))
        model, _, method = request.match_info["call"].partition(":")
        stream = method == "streamGenerateContent"
        try:
            if method not in ("generateContent", "streamGenerateContent"):
                raise Refusal(404, f"Method {method!r} not found.")
            if stream and request.query.get("alt") != "sse":
                raise Refusal(400, "this fake serves streams as server-sent events only: add ?alt=sse")
            self._authenticate(request, vertex)
            model, behavior = self._behavior(model, body)
            validate(body, "v1beta" if vertex else version)  # Vertex's v1 has what Gemini's v1beta has
        except Refusal as r:
            return web.Response(status=r.status, body=error_body(r.status, r.message, r.details, array=vertex),
                                content_type="application/json")
        if behavior.get("hang"):
            await asyncio.Event().wait()
        if behavior.get("slow"):
            await asyncio.sleep(behavior["slow"])
        response_id = f"gfake{self._run}{next(self._serial):012d}"
        if behavior.get("blocked"):
            blocked = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                "usageMetadata": {"promptTokenCount": prompt_tokens(body), "totalTokenCount": prompt_tokens(body)},
                "modelVersion": model, "responseId": response_id}
            if not stream:
                return web.json_response(blocked, dumps=lambda o: orjson.dumps(o).decode())
            return await self._stream(request, [blocked], behavior)
        parts, finish = answer(body)
        if behavior.get("safety"):
            parts, finish = parts[:1], "SAFETY"
        if behavior.get("malformed-call"):
            parts, finish = [], "MALFORMED_FUNCTION_CALL"
        use = usage(body, parts, cached=bool(behavior.get("cached")))
        if not parts:
            use.pop("candidatesTokenCount")
        if not stream:
            whole = response(parts, finish, use, model, response_id)
            if not parts:
                whole["candidates"][0].pop("content")
            return web.Response(body=orjson.dumps(whole), content_type="application/json")
        return await self._stream(request, stream_frames(parts, finish, use, model, response_id), behavior)

    async def _stream(self, request: web.Request, frames: list[dict[str, Any]],
                      behavior: dict[str, Any]) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                          "Content-Disposition": "attachment"})
        await out.prepare(request)
        if behavior.get("abort-mid-stream"):
            for frame in frames[:2]:
                await out.write(sse_frame(frame))
            await asyncio.sleep(0.05)
            if request.transport is not None:
                request.transport.close()
            return out
        if behavior.get("error-event"):  # Gemini's late failure: an error object as a frame
            await out.write(sse_frame(frames[0]))
            await asyncio.sleep(0.05)
            await out.write(sse_frame({"error": {"code": 503, "message": MESSAGES[503], "status": "UNAVAILABLE"}}))
            await out.write_eof()
            return out
        await out.write(b"".join(sse_frame(f) for f in frames))
        await out.write_eof()
        return out

    def _authenticate(self, request: web.Request, vertex: bool) -> None:
        if vertex:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not self.google_tokens.valid(token.strip()):
                raise Refusal(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                   "token, login cookie or other valid authentication credential.")
            return
        key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
        if not key or (self.api_keys is not None and key not in self.api_keys):
            raise Refusal(400, "API key not valid. Please pass a valid API key.", [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])

    @staticmethod
    def _behavior(model: str, body: Any) -> tuple[str, dict[str, Any]]:
        specs: list[str] = []
        if "+" in model:
            model, _, suffix = model.partition("+")
            specs += suffix.split("+")
        contents = body.get("contents") if isinstance(body, dict) else None
        if contents and isinstance(contents[-1], dict):
            text = " ".join(_texts(contents[-1].get("parts") or ()))
            specs += [w for found in _MARKER.findall(text) for w in found.split(",")]
        out: dict[str, Any] = {}
        for word in filter(None, (s.strip() for s in specs)):
            kind, _, arg = word.partition("-")
            if kind == "error" and arg.isdigit() and int(arg) in STATUSES:
                status = int(arg)
                raise Refusal(status, MESSAGES.get(status, f"fake error {status}"),
                              quota_details() if status == 429 else None)
            if kind == "slow" and arg.isdigit():
                out["slow"] = int(arg) / 1000
            elif word in ("error-event", "abort-mid-stream", "hang", "blocked", "safety",
                          "malformed-call", "cached"):
                out[word] = True
            else:
                raise Refusal(400, f"unknown fake behavior {word!r}")
        return model, out



async def start_gemini_fake(api_keys: Iterable[str] | None = None,
                            vertex_public_key: bytes | None = None) -> GeminiFake:
    return await GeminiFake(api_keys, vertex_public_key).start()


def main() -> None:
    def vertex_key(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--vertex-key", type=Path, help="the service account's public key (PEM)")

    serve_main(__doc__.splitlines()[0], lambda args: GeminiFake(
        vertex_public_key=args.vertex_key.read_bytes() if args.vertex_key else None), vertex_key)


if __name__ == "__main__":
    main()
