"""GatewayService: proto and metadata in, the gateway's JSON/SSE bytes out. Translation only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc
import orjson
from google.api import httpbody_pb2
from google.protobuf import json_format
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard_common.credentials import bearer_key
from switchboard_common.errors import NotFound, PermissionDenied
from switchboard_common.interceptors import current_request_id

from switchboard_router.admission import Admission
from switchboard_router.domain import Endpoint, RequestContext
from switchboard_router.gateway import JSON, Gateway
from switchboard_router.providers.openai_compatible import map_stream_error, parse_sse_events
from switchboard_router.routing import Routes
from switchboard_router.validation import parse_json

HttpBody = httpbody_pb2.HttpBody


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, gateway: Gateway, routes: Routes, admission: Admission) -> None:
        self._gateway = gateway
        self._routes = routes
        self._admission = admission

    # --- OpenAI routes for the edge: HttpBody in, OpenAI's bytes out -----------------------------

    async def ChatCompletions(self, request: HttpBody, context) -> AsyncIterator[HttpBody]:
        async for message in self._http(Endpoint.CHAT, request, context):
            yield message

    async def Completions(self, request: HttpBody, context) -> AsyncIterator[HttpBody]:
        async for message in self._http(Endpoint.COMPLETIONS, request, context):
            yield message

    async def Embeddings(self, request: HttpBody, context) -> HttpBody:
        return await _last(self._http(Endpoint.EMBEDDINGS, request, context))

    async def Moderations(self, request: HttpBody, context) -> HttpBody:
        return await _last(self._http(Endpoint.MODERATIONS, request, context))

    async def ListModels(self, request, context) -> HttpBody:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        data = self._routes.listing(caller.allowed_models)
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    async def GetModel(self, request: gateway_pb2.GetModelRequest, context) -> HttpBody:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        if caller.allowed_models and request.model not in caller.allowed_models:
            raise NotFound(f"The model '{request.model}' does not exist or you do not have access "
                           "to it.", param="model", code="model_not_found")
        data = orjson.dumps(self._routes.describe(request.model))
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    async def GetRoutingStats(self, request: gateway_pb2.GetRoutingStatsRequest,
                              context) -> gateway_pb2.GetRoutingStatsResponse:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        if not caller.is_admin:
            raise PermissionDenied("Routing stats need an admin key.", code="admin_key_required")
        out = gateway_pb2.GetRoutingStatsResponse(strategy=self._routes.strategy)
        for d in self._routes.deployments(request.model):
            s = d.stats.snapshot()
            out.deployments.add(
                model=d.route, deployment=d.name, provider=d.provider, healthy=s.healthy,
                circuit_state=s.circuit_state, requests=s.requests, errors=s.errors,
                latency_p50_ms=s.latency_p50_ms, latency_ewma_ms=s.latency_ewma_ms,
                in_flight=s.in_flight)
        return out

    async def _http(self, endpoint: Endpoint, request: HttpBody, context) -> AsyncIterator[HttpBody]:
        ctx = request_context(context)
        body = parse_json(request.data)
        first = True
        async with aclosing(self._gateway.serve(endpoint, ctx, body)) as messages:
            async for content_type, data in messages:
                if first:
                    # Initial metadata only with the first message: an error before it must leave
                    # as a trailers-only response, which the edge's Lua turns into OpenAI's body.
                    await _headers(context, ctx)
                    first = False
                yield HttpBody(content_type=content_type, data=data)

    # --- Typed twins for internal gRPC clients: the same implementation ---------------------------

    async def CreateChatCompletion(self, request: gateway_pb2.ChatCompletionRequest,
                                   context) -> gateway_pb2.ChatCompletion:
        ctx = request_context(context)
        body = typed_body(request)
        body["stream"] = False
        body.pop("stream_options", None)
        data = b""
        async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, body)) as messages:
            async for _, data in messages:
                pass
        await _headers(context, ctx)
        return json_format.ParseDict(orjson.loads(data), gateway_pb2.ChatCompletion(),
                                     ignore_unknown_fields=True)

    async def StreamChatCompletion(self, request: gateway_pb2.ChatCompletionRequest,
                                   context) -> AsyncIterator[gateway_pb2.ChatCompletionChunk]:
        ctx = request_context(context)
        body = typed_body(request)
        body["stream"] = True
        rest, first = b"", True
        async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, body)) as messages:
            async for _, data in messages:
                events, rest = parse_sse_events(rest + data)
                for event in events:
                    if not event.data or event.data == b"[DONE]":
                        continue
                    chunk = orjson.loads(event.data)
                    if "error" in chunk and not chunk.get("choices"):
                        raise map_stream_error(chunk)  # gRPC clients get it as the call's status
                    if first:
                        await _headers(context, ctx)
                        first = False
                    yield json_format.ParseDict(chunk, gateway_pb2.ChatCompletionChunk(),
                                                ignore_unknown_fields=True)


def request_context(context) -> RequestContext:
    """The caller's key and the request id from the call's metadata (lower-case HTTP headers
    through the edge)."""
    return RequestContext(request_id=current_request_id(),
                          key=bearer_key(context.invocation_metadata()) or None,
                          started=time.perf_counter())


def typed_body(request: gateway_pb2.ChatCompletionRequest) -> dict[str, Any]:
    """The typed request as the OpenAI JSON body the edge would have sent."""
    body = json_format.MessageToDict(request, preserving_proto_field_name=True)
    if "seed" in body:  # int64 comes out of MessageToDict as a string
        body["seed"] = int(body["seed"])
    extra = body.pop("extra_body", None)
    if extra:
        body.update(extra)
    return body


async def _headers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    await context.send_initial_metadata((("x-request-id", ctx.request_id),))


async def _last(messages: AsyncIterator[HttpBody]) -> HttpBody:
    out = None
    async with aclosing(messages) as it:
        async for out in it:
            pass
    return out
