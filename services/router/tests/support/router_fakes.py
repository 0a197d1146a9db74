"""Fakes for the router's neighbours: auth's and billing's gRPC services and an OpenAI-compatible
HTTP upstream.

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
  slow-start        headers only after 2 s (JSON or SSE), recording whether the client went away
  stall-body        a JSON answer's headers and half its body, then nothing for 2 s
  future-fields     fields the typed proto does not know, in the answer and in every chunk
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
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc
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
    cache_responses: bool = False


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
            allowed_models=list(key.allowed_models), cache_ttl_seconds=key.ttl,
            cache_responses=key.cache_responses)


async def start_auth(keys: dict[str, FakeKey]) -> tuple[grpc.aio.Server, int, FakeAuth]:
    server = grpc.aio.server()
    fake = FakeAuth(keys)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, fake


class FakeBilling(billing_pb2_grpc.BillingServiceServicer):
    """Billing's lease and price RPCs over in-memory dollar limits per key (the real arithmetic
    is billing's, tested there): grants what is asked, at most the limit less what was granted."""

    def __init__(self, limits: dict[str, int], rates: tuple[int, int] = (2_500_000, 10_000_000),
                 ttl_seconds: float = 60.0) -> None:
        self.limits = limits  # key id -> micro-dollars
        self.granted: dict[str, int] = {}
        self.returned: list[tuple[str, int]] = []
        self.rates = rates  # input, output: micro-dollars per million tokens
        self.ttl = ttl_seconds
        self.lease_calls = 0
        self.price_calls = 0
        self.down = False

    async def _check(self, context) -> None:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "billing is down")

    async def LeaseBudget(self, request, context):
        await self._check(context)
        self.lease_calls += 1
        reply = billing_pb2.LeaseBudgetResponse()
        reply.expires_at.FromNanoseconds(int((time.time() + self.ttl) * 1e9))
        limit = self.limits.get(request.key_id)
        if limit is None:
            reply.no_dollar_limit = reply.no_token_limit = True
            return reply
        given = self.granted.get(request.key_id, 0)
        grant = max(0, min(request.amount_micros_usd, limit - given))
        self.granted[request.key_id] = given + grant
        reply.lease_id = f"lease-{request.key_id}-{request.replica_id}"
        reply.granted_micros_usd, reply.no_token_limit = grant, True
        return reply

    async def ReturnBudget(self, request, context):
        await self._check(context)
        self.returned.append((request.lease_id, request.unused_micros_usd))
        return billing_pb2.ReturnBudgetResponse(returned_micros_usd=request.unused_micros_usd)

    async def BatchGetPrices(self, request, context):
        await self._check(context)
        self.price_calls += 1
        return billing_pb2.BatchGetPricesResponse(prices=[
            billing_pb2.Price(query=q, price_source="switchboard.yaml",
                              input_per_mtok_micros_usd=self.rates[0],
                              output_per_mtok_micros_usd=self.rates[1],
                              cached_input_per_mtok_micros_usd=self.rates[0] // 2)
            for q in request.queries])


async def start_billing(fake: FakeBilling) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    billing_pb2_grpc.add_BillingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


ANSWER = "Hello there from the fake upstream"
# As OpenAI reports it: 4 of the prompt tokens came from its prompt cache, 2 were spent reasoning.
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
         "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0}}


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
        if model == "slow-start" and not await self._wait_unless_gone(request, 2.0):
            return web.Response(status=499)
        if model == "stall-body":
            return await self._stall_body(request, model)
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

    async def _wait_unless_gone(self, request: web.Request, seconds: float) -> bool:
        """Sleep, watching the connection: False (and `aborted` set) when the client closed it.
        aiohttp does not cancel a handler whose client went away, so it is polled."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if request.transport is None or request.transport.is_closing():
                self.aborted.set()
                return False
            await asyncio.sleep(0.01)
        return True

    async def _stall_body(self, request: web.Request, model: str) -> web.StreamResponse:
        body = orjson.dumps(_completion(model))
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        if await self._wait_unless_gone(request, 2.0):
            await resp.write(body[len(body) // 2:])
        return resp

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
                if model == "future-fields":
                    chunk = {**chunk, "obfuscation": "x1"}
                    chunk["choices"][0]["delta"]["future_delta"] = i
                await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                if model == "stall-stream":
                    await asyncio.sleep(1)
                if model == "slow-stream":
                    await asyncio.sleep(0.02)
            if include_usage:
                await resp.write(b"data: " + orjson.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                    "model": model, "choices": [],
                    "usage": USAGE})
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
    message = {"role": "assistant", "content": ANSWER}
    if model == "future-fields":
        message["annotations"] = [{"type": "url_citation", "url_citation": {"url": "https://x"}}]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "future_field": {"kept": True},
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": USAGE}


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
