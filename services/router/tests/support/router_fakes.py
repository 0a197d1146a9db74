"""Fakes for the router's neighbours: auth's gRPC service and an OpenAI-compatible HTTP upstream.

The upstream's behaviour is chosen by the model it is asked for, so one server covers every case:
  ok-*              a normal answer (JSON, or SSE with one write per chunk)
  no-usage          a stream that never reports usage, even when asked
  rate-limited      429 with retry-after: 7
  broken            500
  bad-creds         401 whose message quotes part of the key, as OpenAI's does
  bad-request       400 naming a param
  midstream-abort   two chunks, then the connection is cut
  slow-stream       a chunk every 20 ms for 10 s, recording whether the client went away
  slow-answer       a JSON answer after 1 s
  stall-stream      one chunk, then nothing for 1 s
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
from aiohttp import web
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_common.errors import PermissionDenied, Unauthenticated


GOOD_KEY = "sk-test-good"
ADMIN_KEY = "sk-test-admin"
LIMITED_KEY = "sk-test-limited"


@dataclass
class FakeKey:
    key_id: str
    tenant_id: str = "tenant-1"
    allowed_models: tuple[str, ...] = ()
    is_admin: bool = False
    ttl: int = 300


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    """Answers Authorize from a dict of keys, as auth would (errors with our trailing metadata)."""

    def __init__(self, keys: dict[str, FakeKey]) -> None:
        self.keys = keys
        self.calls: list[tuple[str, str]] = []

    async def Authorize(self, request, context):
        self.calls.append((request.key, request.model))
        key = self.keys.get(request.key)
        if key is None:
            err = Unauthenticated("Incorrect API key provided.")
            await context.abort(err.grpc_code, err.message, trailing_metadata=err.trailing_metadata())
        if key.allowed_models and request.model and request.model not in key.allowed_models:
            err = PermissionDenied(f"This key may not use '{request.model}'.")
            await context.abort(err.grpc_code, err.message, trailing_metadata=err.trailing_metadata())
        return auth_pb2.AuthorizeResponse(
            key_id=key.key_id, tenant_id=key.tenant_id, is_admin=key.is_admin,
            allowed_models=list(key.allowed_models), cache_ttl_seconds=key.ttl)


async def start_auth(keys: dict[str, FakeKey]) -> tuple[grpc.aio.Server, int, FakeAuth]:
    server = grpc.aio.server()
    fake = FakeAuth(keys)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, fake


ANSWER = "Hello there from the fake upstream"


@dataclass
class FakeUpstream:
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    aborted: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application()
        for path in ("chat/completions", "completions", "embeddings", "moderations"):
            app.router.add_post(f"/v1/{path}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        model = body.get("model", "")
        if model == "rate-limited":
            return _error(429, "Rate limit reached for requests", "rate_limit_exceeded",
                          {"retry-after": "7"})
        if model == "broken":
            return _error(500, "The server had an error while processing your request.", None)
        if model == "bad-creds":
            return _error(401, "Incorrect API key provided: sk-abc*****wxyz.", "invalid_api_key")
        if model == "bad-request":
            return _error(400, "Invalid value for 'temperature'.", "invalid_value",
                          param="temperature")
        if model == "slow-answer":
            await asyncio.sleep(1)
        if request.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return web.json_response({"object": "list", "model": model, "data": [
                {"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(len(inputs))],
                "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        if request.path.endswith("/moderations"):
            return web.json_response({"id": "modr-1", "model": model, "results": [
                {"flagged": False, "categories": {}, "category_scores": {}}]})
        if body.get("stream"):
            return await self._stream(request, body, model)
        return web.Response(body=orjson.dumps(_completion(model)), content_type="application/json")

    async def _stream(self, request: web.Request, body: dict, model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        include_usage = (body.get("stream_options") or {}).get("include_usage") and model != "no-usage"
        words = ANSWER.split(" ")
        if model == "slow-stream":
            words = [f"w{i}" for i in range(500)]
        chunks = [_chunk(model, {"role": "assistant", "content": ""}, include_usage)]
        chunks += [_chunk(model, {"content": (" " if i else "") + w}, include_usage)
                   for i, w in enumerate(words)]
        chunks.append(_chunk(model, {}, include_usage, finish="stop"))
        try:
            for i, chunk in enumerate(chunks):
                if model == "midstream-abort" and i == 2:
                    request.transport.close()  # cut mid-stream: no terminating chunk
                    return resp
                await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                if model == "stall-stream":
                    await asyncio.sleep(1)
                if model == "slow-stream":
                    await asyncio.sleep(0.02)
            if include_usage:
                await resp.write(b"data: " + orjson.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
                    + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionError:  # the router closed the connection: the client went away
            self.aborted.set()
        except asyncio.CancelledError:
            self.aborted.set()
            raise
        return resp


def _completion(model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "future_field": {"kept": True},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


def _chunk(model: str, delta: dict, include_usage: bool, finish: str | None = None) -> dict:
    out = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if include_usage:
        out["usage"] = None
    return out


def _error(status: int, message: str, code: str | None, headers: dict | None = None,
           param: str | None = None) -> web.Response:
    return web.Response(status=status, headers=headers, content_type="application/json",
                        body=orjson.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                     "param": param, "code": code}}))
