"""A fake AWS Bedrock Runtime (Converse, ConverseStream) on loopback, in Bedrock's exact wire format.

    python -m tests.fakes.bedrock_fake --host 127.0.0.1 --port 0 [--port-file PATH]
    fake = await start_bedrock_fake()     # fake.base_url, as BEDROCK_BASE_URL takes it

Every request must be signed with SigV4 (signing name `bedrock`, the fake's region) by one of the
fake's credentials, the signature recomputed here with botocore's signer, or carry one of its
Bedrock API keys as `Authorization: Bearer`. Bodies are validated with botocore's ParamValidator
against the bedrock-runtime service model (unknown members refused), then Bedrock's own rules
(bedrock_wire.py). A refused request gets Bedrock's error: its status, `x-amzn-ErrorType` and
`{"message": ...}`.

CountTokens (`/model/{id}/count-tokens`) counts an InvokeModel body for anthropic.* models, the
blob decoded and checked as InvokeModel's would be, as the Anthropic fake counts (words).
InvokeModel serves embeddings for amazon.titan-embed-text-v1/-v2 and cohere.embed-* (their body
schemas from Bedrock's model-parameter pages, unknown keys refused): deterministic vectors of the
model's size, Titan's token count as words; and, with InvokeModelWithResponseStream, Anthropic's
Messages API for anthropic.* models (bedrock_anthropic.py).

Answers, like the other fakes': "Echo: <last user text>" (+ " [N image(s)]"), one toolUse per tool
on "call_tools" (the first on "call_tool"), a forced tool (toolChoice.tool) answered with input
fitting its schema, "Echo: r1 | r2" after tool results. Streams are real event-stream frames.

Failures, as `[fake:...]` markers in the last user text or a `+...` model suffix: error-<status>
(400, 403, 404, 408, 424, 429 throttling, 500, 503 service unavailable), not-ready (429
ModelNotReadyException), slow-<ms>, abort-mid-stream (the connection cut after the first frames),
exception-event (a throttlingException frame after the first text, in a write of its own),
exception-first (one right after messageStart).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, NamedTuple
from urllib.parse import unquote

import orjson
from aiohttp import web

from tests.fakes.fake_server import FakeServer, json_or_none, serve_main
from tests.fakes import bedrock_anthropic as anthropic
from tests.fakes import bedrock_wire as wire
from tests.fakes.bedrock_wire import Refusal

ACCESS_KEY = "AKIAFAKEBEDROCK00001"
SECRET_KEY = "fake/bedrock+secret/key/for/tests/only00"
API_KEY = "bedrock-api-key-fake-0001"
REGION = "us-east-1"
_MARKER = re.compile(r"\[fake:([^\]]+)\]")
_BY_STATUS = {status: name for name, status in wire.ERRORS.items() if name != "ModelNotReadyException"}
_OPERATIONS = {"converse": "Converse", "converse-stream": "ConverseStream", "invoke": "InvokeModel",
               "invoke-with-response-stream": "InvokeModelWithResponseStream", "count-tokens": "CountTokens"}


class Recorded(NamedTuple):
    path: str
    headers: dict[str, str]
    json: Any


class BedrockFake(FakeServer):
    ID_DIGITS = 12

    def __init__(self, credentials: dict[str, str] | None = None, api_keys: frozenset[str] | None = None,
                 region: str = REGION) -> None:
        super().__init__()
        self.credentials = credentials if credentials is not None else {ACCESS_KEY: SECRET_KEY}
        self.api_keys = api_keys if api_keys is not None else frozenset({API_KEY})
        self.region = region
        self.requests: list[Recorded] = []

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/model/{model_id}/{action}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json_or_none(raw)
        # The model id as the path carried it, percent-encoded (…-v1%3A0), as it was signed.
        raw_segments = request.raw_path.split("?")[0].split("/")
        model_id, action = unquote(raw_segments[2]), raw_segments[3]
        self.requests.append(Recorded(request.raw_path, dict(request.headers), body))
        try:
            self._authenticate(request, raw)
            if action not in _OPERATIONS:
                raise Refusal("UnknownOperationException", "Unknown operation", 404)
            behavior = self._behavior(model_id, body)
            model_id = model_id.partition("+")[0]
            if action == "count-tokens":
                return web.json_response({"inputTokens": anthropic.count(model_id, body)},
                                         headers={"x-amzn-RequestId": self._id("req-")})
            if action.startswith("invoke") and anthropic.is_anthropic(model_id):
                return await self._anthropic(request, model_id, action, body, behavior)
            if action == "invoke":
                answer = wire.embed(model_id, raw, request.headers.get("Content-Type", ""),
                                    request.headers.get("Accept"))
                return web.Response(body=orjson.dumps(answer), headers={
                    "Content-Type": "application/json", "x-amzn-RequestId": self._id("req-"),
                    "X-Amzn-Bedrock-Input-Token-Count": str(answer.get("inputTextTokenCount", 0))})
            wire.validate(_OPERATIONS[action], model_id, body)
        except Refusal as r:
            return _error(r)
        if behavior.get("slow"):
            await asyncio.sleep(behavior["slow"])
        content, stop = wire.answer(body, lambda: self._id("tooluse_"), _MARKER)
        use = wire.usage(body, content, orjson.dumps)
        headers = {"x-amzn-RequestId": self._id("req-")}
        if action == "converse":
            return web.Response(body=orjson.dumps({
                "output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                "usage": use, "metrics": {"latencyMs": 12}}), headers={"Content-Type": "application/json", **headers})
        return await self._stream(request, wire.stream_events(content, stop, use, orjson.dumps), behavior, headers)

    async def _anthropic(self, request: web.Request, model_id: str, action: str, body: Any,
                         behavior: dict[str, Any]) -> web.StreamResponse:
        """Anthropic's Messages API through InvokeModel(WithResponseStream): bedrock_anthropic.py."""
        message = anthropic.message(anthropic.validate(model_id, body),
                                    iter(lambda: self._id("toolu_bdrk_"), None), self._id("msg_bdrk_"))
        headers = {"x-amzn-RequestId": self._id("req-"),
                   "X-Amzn-Bedrock-Input-Token-Count": str(message["usage"]["input_tokens"])}
        if behavior.get("slow"):
            await asyncio.sleep(behavior["slow"])
        if action == "invoke":
            return web.Response(body=orjson.dumps(message), headers={"Content-Type": "application/json", **headers})
        return await self._stream(request, anthropic.chunks(message), behavior, headers)

    async def _stream(self, request: web.Request, events: list[bytes], behavior: dict[str, Any],
                      headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream", **headers})
        await response.prepare(request)
        throttled = wire.exception("throttlingException", orjson.dumps(
            {"message": "Too many tokens, please wait before trying again."}))
        if behavior.get("exception-first"):
            events = [events[0], throttled]
        if behavior.get("abort-mid-stream"):
            await response.write(b"".join(events[:3]))
            if request.transport is not None:
                request.transport.close()
            return response
        if behavior.get("exception-event"):  # after the first text, in a write of its own
            await response.write(b"".join(events[:2]))
            await asyncio.sleep(0.05)
            events = [throttled]

        await response.write(b"".join(events))
        await response.write_eof()
        return response

    def _authenticate(self, request: web.Request, raw: bytes) -> None:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            if authorization[7:].strip() not in self.api_keys:
                raise Refusal("UnrecognizedClientException", "Invalid API Key format: Must start with "
                                                             "pre-defined prefix", 403)
            return
        url = f"{request.scheme}://{request.host}{request.raw_path}"
        why = wire.verify_sigv4(url, dict(request.headers), raw, self.credentials, self.region)
        if why is not None:
            raise Refusal("InvalidSignatureException" if "signature" in why else
                          "UnrecognizedClientException", why, 403)

    @staticmethod
    def _behavior(model_id: str, body: Any) -> dict[str, Any]:
        specs = model_id.split("+")[1:]
        messages = body.get("messages") if isinstance(body, dict) else None
        if messages and isinstance(messages[-1], dict):
            content = messages[-1].get("content") or ()
            texts = content if isinstance(content, str) else " ".join(  # Anthropic's: a string too
                b.get("text", "") for b in content if isinstance(b, dict))
            specs += [w for found in _MARKER.findall(texts) for w in found.split(",")]
        out: dict[str, Any] = {}
        for word in filter(None, (s.strip() for s in specs)):
            kind, _, arg = word.partition("-")
            if kind == "error" and arg.isdigit() and int(arg) in _BY_STATUS:
                name = _BY_STATUS[int(arg)]
                raise Refusal(name, {"ThrottlingException": "Too many requests, please wait before "
                                                            "trying again.",
                                     "ServiceUnavailableException": "Bedrock is unable to process "
                                                                    "your request."}.get(name, f"fake {name}"))
            if word == "not-ready":
                raise Refusal("ModelNotReadyException", "Model is not ready for inference. Wait and try again.")
            if kind == "slow" and arg.isdigit():
                out["slow"] = int(arg) / 1000
            elif word in ("abort-mid-stream", "exception-event", "exception-first"):
                out[word] = True
            else:
                raise Refusal("ValidationException", f"unknown fake behavior {word!r}")
        return out



def _error(r: Refusal) -> web.Response:
    return web.Response(status=r.status, body=orjson.dumps({"message": r.message}), headers={
        "Content-Type": "application/json", "x-amzn-RequestId": "fake-error",
        "x-amzn-ErrorType": f"{r.error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"})


async def start_bedrock_fake(**kw: Any) -> BedrockFake:
    return await BedrockFake(**kw).start()


def main() -> None:
    serve_main((__doc__ or "").splitlines()[0], lambda args: BedrockFake())


if __name__ == "__main__":
    main()
