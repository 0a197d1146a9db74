"""GatewayService: proto and metadata in, the gateway's JSON/SSE bytes (or typed messages) out.
Translation only."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any, TypeVar

import grpc
import orjson
import structlog
from google.api import httpbody_pb2
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard_common.admission import Admission
from switchboard_common.credentials import bearer_key
from switchboard_common.errors import ApiError, InvalidRequest, NotFound, PermissionDenied
from switchboard_common.interceptors import current_request_id, invocation_metadata
from switchboard_common.models import model_allowed
from switchboard_common.strict_json import json_twin, refuse_query_override

from switchboard_router import routing_stats, typed, typed_inbound
from switchboard_router.cache.directives import CACHE_CONTROL, CACHE_HEADER
from switchboard_router.deadlines import SDK_TIMEOUT_HEADERS, sdk_timeout
from switchboard_router.domain import Endpoint, RequestContext
from switchboard_router.gateway import JSON, Gateway
from switchboard_router.guarding import POLICIES_HEADER
from switchboard_router.inbound.input_items import bracketed_query
from switchboard_router.inbound.native import split_betas
from switchboard_router.inbound.serve import COUNT_SOURCE_HEADER, Inbound, anthropic_shaped
from switchboard_router.keyring import KeyRing
from switchboard_router.stored_credentials import CredentialView, StoredCredentials
from switchboard_router.preference import PREFERRED_MODEL_HEADER
from switchboard_router.routing import Routes

HttpBody = httpbody_pb2.HttpBody
_CONTEXT_HEADERS = frozenset({POLICIES_HEADER, PREFERRED_MODEL_HEADER, CACHE_HEADER, CACHE_CONTROL, "anthropic-beta",
                              *SDK_TIMEOUT_HEADERS})  # what request_context reads
_log = structlog.get_logger("servicer")
T = TypeVar("T")


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    # The REST bindings with a body: read strictly, then the typed RPC below.
    CreateProviderCredentialJson = json_twin("CreateProviderCredential",
                                             gateway_pb2.CreateProviderCredentialRequest)
    RotateProviderCredentialJson = json_twin("RotateProviderCredential",
                                             gateway_pb2.RotateProviderCredentialRequest)

    def __init__(self, gateway: Gateway, routes: Routes, admission: Admission,
                 keyrings: Callable[[], Iterable[KeyRing]] = tuple,
                 credentials: StoredCredentials | None = None, inbound: Inbound | None = None) -> None:
        self._credentials = credentials
        self._gateway = gateway
        self._keyrings = keyrings  # the providers with several keys, for the stats
        self._routes = routes
        self._admission = admission
        self._inbound = inbound  # Anthropic's and OpenAI's other inbound APIs (None: not served)

    # --- OpenAI routes for the edge: HttpBody in, OpenAI's bytes out -----------------------------

    # Not async generators themselves: each layer of one costs a hook call, a weak reference and
    # a step per message; the interceptor iterates (and closes) the one they return.
    def ChatCompletions(self, request: HttpBody, context) -> AsyncGenerator[HttpBody, None]:
        return self._http(Endpoint.CHAT, request, context)

    def Completions(self, request: HttpBody, context) -> AsyncGenerator[HttpBody, None]:
        return self._http(Endpoint.COMPLETIONS, request, context)

    async def Embeddings(self, request: HttpBody, context) -> HttpBody:
        return await _last(self._http(Endpoint.EMBEDDINGS, request, context))

    async def Moderations(self, request: HttpBody, context) -> HttpBody:
        return await _last(self._http(Endpoint.MODERATIONS, request, context))

    async def Messages(self, request: HttpBody, context) -> AsyncIterator[HttpBody]:
        ctx = request_context(context)
        try:
            async for message in _relay(context, ctx, self._served().messages(ctx, request.data)):
                yield message
        except Exception as exc:  # noqa: BLE001 - every error of this route in Anthropic's shape
            raise _anthropic(exc) from None

    async def CountMessageTokens(self, request: HttpBody, context) -> HttpBody:
        ctx = request_context(context)
        try:
            data, source = await self._served().count_message_tokens(ctx, request.data)
        except Exception as exc:  # noqa: BLE001 - every error of this route in Anthropic's shape
            raise _anthropic(exc) from None
        ctx.headers.append((COUNT_SOURCE_HEADER, source))
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    async def Responses(self, request: HttpBody, context) -> AsyncIterator[HttpBody]:
        ctx = request_context(context)
        async for message in _relay(context, ctx, self._served().responses(ctx, request.data)):
            yield message

    async def GetResponse(self, request: gateway_pb2.GetResponseRequest, context) -> HttpBody:
        async def get(ctx: RequestContext) -> bytes:
            _refuse_replay(request, bracketed_query(context.invocation_metadata(), "include"))
            return await self._served().get_response(ctx, request.response_id)
        return await self._stored(context, get)

    async def DeleteResponse(self, request: gateway_pb2.DeleteResponseRequest, context) -> HttpBody:
        return await self._stored(context, lambda ctx: self._served().delete_response(
            ctx, request.response_id))

    async def CancelResponse(self, request: gateway_pb2.CancelResponseRequest, context) -> HttpBody:
        return await self._stored(context, lambda ctx: self._served().cancel_response(
            ctx, request.response_id))

    async def ListResponseInputItems(self, request: gateway_pb2.ListResponseInputItemsRequest,
                                     context) -> HttpBody:
        return await self._stored(context, lambda ctx: self._served().list_input_items(
            ctx, request.response_id, after=request.after if request.HasField("after") else None,
            limit=request.limit if request.HasField("limit") else None,
            order=request.order if request.HasField("order") else None,
            include=[*request.include, *bracketed_query(context.invocation_metadata(), "include")]))

    async def _stored(self, context, answer: Callable[[RequestContext], Awaitable[bytes]]) -> HttpBody:
        """A stored response's route: the key first (before the query, as on every route), the
        path's id not overridden by the query, then the answer with the call's headers."""
        ctx = request_context(context)
        await self._admission.admit(ctx.key, "")
        refuse_query_override(context, "response_id")
        data = await answer(ctx)
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    def _served(self) -> Inbound:
        if self._inbound is None:
            raise NotFound("This gateway does not serve this API.", code="not_found")
        return self._inbound

    async def ListModels(self, request, context) -> HttpBody:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        data = self._routes.listing(caller.allowed_models)
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    async def GetModel(self, request: gateway_pb2.GetModelRequest, context) -> HttpBody:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        if not model_allowed(caller.allowed_models, request.model):
            raise NotFound(f"The model '{request.model}' does not exist or you do not have access "
                           "to it.", param="model", code="model_not_found")
        data = orjson.dumps(self._routes.describe(request.model))
        await _headers(context, ctx)
        return HttpBody(content_type=JSON, data=data)

    async def GetRoutingStats(self, request: gateway_pb2.GetRoutingStatsRequest,
                              context) -> gateway_pb2.GetRoutingStatsResponse:
        return routing_stats.message(await self._routing_stats(request, context))

    async def GetRoutingStatsHttp(self, request: gateway_pb2.GetRoutingStatsRequest,
                                  context) -> HttpBody:
        return HttpBody(content_type=JSON,
                        data=orjson.dumps(await self._routing_stats(request, context)))

    async def _routing_stats(self, request: gateway_pb2.GetRoutingStatsRequest,
                             context) -> dict[str, Any]:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        if not caller.is_admin:
            raise PermissionDenied("Routing stats need an admin key.", code="admin_key_required")
        return routing_stats.collect(self._routes, request.model, self._keyrings())

    # --- stored provider credentials (admin keys only) -------------------------------------------

    async def _credential_admin(self, context) -> StoredCredentials:
        ctx = request_context(context)
        caller = await self._admission.admit(ctx.key, "")
        if not caller.is_admin:
            raise PermissionDenied("Provider credentials need an admin key.", code="admin_key_required")
        assert self._credentials is not None, "bootstrap gives the servicer the credential store"
        return self._credentials

    async def CreateProviderCredential(self, request, context):
        admin = await self._credential_admin(context)
        return _credential(await admin.create(request.provider, request.secret, request.weight,
                                              request.rpm))

    async def ListProviderCredentials(self, request, context):
        admin = await self._credential_admin(context)
        return gateway_pb2.ListProviderCredentialsResponse(
            credentials=[_credential(c) for c in await admin.list(request.provider)])

    async def GetProviderCredential(self, request, context):
        refuse_query_override(context, "credential_id")
        admin = await self._credential_admin(context)
        return _credential(await admin.get(request.credential_id))

    async def RotateProviderCredential(self, request, context):
        admin = await self._credential_admin(context)
        return _credential(await admin.rotate(request.credential_id, request.secret))

    async def DeleteProviderCredential(self, request, context):
        refuse_query_override(context, "credential_id")
        admin = await self._credential_admin(context)
        return _credential(await admin.delete(request.credential_id))

    def _http(self, endpoint: Endpoint, request: HttpBody, context) -> AsyncGenerator[HttpBody, None]:
        ctx = request_context(context)
        # The raw body: the gateway checks the key before it parses it (401 before 400, as OpenAI).
        return _relay(context, ctx, self._gateway.serve(endpoint, ctx, request.data))

    # --- Typed twins for internal gRPC clients: the same implementation ---------------------------

    async def CreateChatCompletion(self, request: gateway_pb2.ChatCompletionRequest,
                                   context) -> gateway_pb2.ChatCompletion:
        ctx = request_context(context)
        body = typed_body(request)
        body["stream"] = False
        body.pop("stream_options", None)
        return await _unary(context, ctx, self._gateway.serve_objects(
            Endpoint.CHAT, ctx, body, _typed(gateway_pb2.ChatCompletion)))

    async def StreamChatCompletion(self, request: gateway_pb2.ChatCompletionRequest,
                                   context) -> AsyncGenerator[gateway_pb2.ChatCompletionChunk, None]:
        ctx = request_context(context)
        body = typed_body(request)
        body["stream"] = True
        async for chunk in _streamed(context, ctx, self._gateway.serve_objects(
                Endpoint.CHAT, ctx, body, _typed(gateway_pb2.ChatCompletionChunk))):
            yield chunk

    # The twins of Messages and Responses: the route's JSON body, served by the route's code.

    async def CreateMessage(self, request: gateway_pb2.MessageRequest, context) -> gateway_pb2.Message:
        ctx = request_context(context)
        pieces = self._served().messages(ctx, typed_inbound.body(request, stream=False))
        return await _unary(context, ctx, typed_inbound.answers(pieces, gateway_pb2.Message))

    async def StreamMessage(self, request: gateway_pb2.MessageRequest,
                            context) -> AsyncGenerator[gateway_pb2.MessageStreamEvent, None]:
        ctx = request_context(context)
        pieces = self._served().messages(ctx, typed_inbound.body(request, stream=True))
        async for event in _streamed(context, ctx, typed_inbound.answers(
                pieces, gateway_pb2.MessageStreamEvent)):
            yield event

    async def CountMessageTokensTyped(self, request: gateway_pb2.MessageRequest,
                                      context) -> gateway_pb2.MessageTokenCount:
        ctx = request_context(context)
        data, source = await self._served().count_message_tokens(ctx, typed_inbound.body(request))
        ctx.headers.append((COUNT_SOURCE_HEADER, source))
        await _headers(context, ctx)
        return typed.to_message(orjson.loads(data), gateway_pb2.MessageTokenCount)

    async def CreateResponse(self, request: gateway_pb2.ResponseRequest,
                             context) -> gateway_pb2.Response:
        ctx = request_context(context)
        pieces = self._served().responses(ctx, typed_inbound.body(request, stream=False))
        return await _unary(context, ctx, typed_inbound.answers(pieces, gateway_pb2.Response))

    async def StreamResponse(self, request: gateway_pb2.ResponseRequest,
                             context) -> AsyncGenerator[gateway_pb2.ResponseStreamEvent, None]:
        ctx = request_context(context)
        pieces = self._served().responses(ctx, typed_inbound.body(request, stream=True))
        async for event in _streamed(context, ctx, typed_inbound.answers(
                pieces, gateway_pb2.ResponseStreamEvent)):
            yield event

    # The twins of GetResponse and DeleteResponse: the routes themselves, their JSON typed.

    async def GetResponseTyped(self, request: gateway_pb2.GetResponseRequest,
                               context) -> gateway_pb2.Response:
        answer = await self.GetResponse(request, context)
        return typed.to_message(orjson.loads(answer.data), gateway_pb2.Response)

    async def DeleteResponseTyped(self, request: gateway_pb2.DeleteResponseRequest,
                                  context) -> gateway_pb2.DeletedResponse:
        answer = await self.DeleteResponse(request, context)
        return typed.to_message(orjson.loads(answer.data), gateway_pb2.DeletedResponse)


async def _unary(context, ctx: RequestContext, answers: AsyncGenerator[T, None]) -> T:
    """A typed twin's whole answer: the last (only) object, then the call's headers."""
    answer = await _last(answers)
    await _headers(context, ctx)
    return answer


async def _streamed(context, ctx: RequestContext,
                    objects: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """A stream (of HttpBody for the edge, of typed objects for the twins): headers with the
    first object (an error before it leaves as the whole status), trailers at the end."""
    first = True
    async with aclosing(objects) as out:
        async for obj in out:
            if first:
                await _headers(context, ctx)
                first = False
            yield obj
    _trailers(context, ctx)


def request_context(context) -> RequestContext:
    """The caller's key, the request id and how long the caller waits, from the call and its
    metadata (lower-case HTTP headers through the edge)."""
    metadata = invocation_metadata(context)
    # One pass picks the few headers read here (most requests send none of them).
    wanted = [(n, v) for n, v in metadata if n in _CONTEXT_HEADERS and isinstance(v, str)]
    ctx = RequestContext(request_id=current_request_id(), key=bearer_key(metadata) or None,
                         started=time.perf_counter(), grpc_timeout=context.time_remaining(),
                         sdk_timeout=sdk_timeout(wanted) if wanted else None)
    for name, value in wanted:
        if name == POLICIES_HEADER:
            ctx.requested_policies = value
        elif name == PREFERRED_MODEL_HEADER:
            ctx.preferred_model = value.strip()
        elif name == CACHE_HEADER:
            ctx.cache_switch = value
        elif name == CACHE_CONTROL:
            ctx.cache_control = value
    ctx.anthropic_beta = split_betas([v for n, v in wanted if n == "anthropic-beta"])
    return ctx


def typed_body(request: gateway_pb2.ChatCompletionRequest) -> dict[str, Any]:
    """The typed request as the OpenAI JSON body the edge would have sent."""
    body = typed.to_json(request)
    if "seed" in body:  # int64 comes out of MessageToDict as a string
        body["seed"] = int(body["seed"])
    extra = body.pop("extra_body", None)
    if extra:
        body.update(extra)
    return body


def _refuse_replay(request: gateway_pb2.GetResponseRequest, bracketed_include: list[str]) -> None:
    """OpenAI's GET parameters for replaying a stream and adding output data: not served here
    (`include[]=`, as the openai SDK sends it, is not mapped to the field by the edge)."""
    include = [*request.include, *bracketed_include]
    for name, value in (("stream", request.stream), ("include", include),
                        ("starting_after", request.HasField("starting_after"))):
        if value:
            raise InvalidRequest(f"'{name}' is not supported on GET /v1/responses/{{id}} through "
                                 "this gateway: the stored response is answered whole.",
                                 param=name, code="unsupported_parameter")


def _anthropic(exc: Exception) -> ApiError:
    """/v1/messages' errors in Anthropic's shape, an unexpected one too (as a 500 api_error; the
    interceptor would have rendered it in OpenAI's)."""
    if not isinstance(exc, ApiError):
        _log.exception("unhandled error")
        exc = ApiError("internal error")
    return anthropic_shaped(exc)


def _typed(cls):
    return lambda obj: typed.to_message(obj, cls)


async def _headers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    await context.send_initial_metadata((("x-request-id", ctx.request_id), *ctx.headers))


def _trailers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    if ctx.trailers:  # e.g. a stream's cost, known only at its end
        context.set_trailing_metadata(tuple(ctx.trailers))


async def _last(messages: AsyncGenerator[T, None]) -> T:
    """The last (only) message of a unary answer; the generator closed however it ends."""
    out = None
    async with aclosing(messages) as it:
        async for out in it:  # noqa: B007 - the last message is the whole answer
            pass
    assert out is not None, "a unary answer is always one message"
    return out


async def _relay(context, ctx: RequestContext, pieces: AsyncGenerator[tuple[str, bytes], None]
                 ) -> AsyncGenerator[HttpBody, None]:
    """_streamed of the pieces as HttpBody messages, in one layer. Initial metadata only with the
    first message: an error before it must leave as a trailers-only response, which the edge's
    Lua turns into OpenAI's body."""
    first = True
    async with aclosing(pieces) as out:
        async for content_type, data in out:
            if first:
                await _headers(context, ctx)
                first = False
            yield HttpBody(content_type=content_type, data=data)
    _trailers(context, ctx)


def _credential(c: CredentialView) -> gateway_pb2.ProviderCredential:
    out = gateway_pb2.ProviderCredential(credential_id=c.credential_id, provider=c.provider,
                                         hint=c.hint, weight=c.weight, rpm=c.rpm or 0)
    if c.created_at is not None:
        out.created_at.FromDatetime(c.created_at)
    if c.updated_at is not None:
        out.updated_at.FromDatetime(c.updated_at)
    return out
