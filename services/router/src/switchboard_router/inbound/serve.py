"""The inbound routes' driver: the client's body translated to Chat Completions (or, for
/v1/messages to an Anthropic-format deployment, passed through as it is), served by the gateway's
one request path (admission, limits, budgets, guardrails, memory hooks, one usage record), and
its answer translated back. The translations are pure (messages.py, messages_answer.py,
native.py, responses.py, responses_answer.py); this module only wires them to the gateway
and to stored responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import orjson
from switchboard_common.admission import Admission, model_refused
from switchboard_common.errors import ApiError, InvalidRequest
from switchboard_common.models import model_allowed

from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.domain import Endpoint, RequestContext
from switchboard_router.gateway import JSON, SSE, Gateway
from switchboard_router.providers.base import speaks_messages
from switchboard_router.inbound import input_items, messages_answer, native, responses
from switchboard_router.inbound.responses_answer import ResponsesStream, from_chat, shell
from switchboard_router.providers.base import Call, Provider
from switchboard_router.routing import Routes
from switchboard_router.stored_responses import Record, StoredResponses, not_found
from switchboard_router.tokens import Tokenizer, chat_chars, in_worker
from switchboard_router.validation import parse_json

# count_tokens' answer says where its number came from: the provider, or this local estimate.
COUNT_SOURCE_HEADER = "x-switchboard-token-count"
# The anthropic-beta values a request sent that were not passed to the provider (native.BETAS).
DROPPED_BETAS_HEADER = "x-switchboard-betas-not-passed"

Pieces = AsyncGenerator[tuple[str, bytes], None]


class Inbound:
    def __init__(self, gateway: Gateway, admission: Admission, routes: Routes,
                 tokenizer: Tokenizer, providers: Mapping[str, Provider],
                 stored: StoredResponses | None = None, *, storing: bool = False) -> None:
        self._gateway = gateway
        self._providers = providers
        self._admission = admission
        self._routes = routes
        self._tokenizer = tokenizer
        self._stored = stored  # memory's stored responses (None: not served at all)
        # Whether new responses are stored (responses.store); stored ones stay readable.
        self._storing = storing and stored is not None

    async def _body(self, ctx: RequestContext, data: bytes) -> dict[str, Any]:
        # The key before the body, as on every route: bad JSON without a valid key is a 401.
        await self._admission.admit(ctx.key, "")
        return parse_json(data)

    async def _estimate(self, chat: dict[str, Any]) -> int:
        chat_messages, tools = chat["messages"], chat.get("tools")
        return await in_worker(chat_chars(chat_messages, tools), self._tokenizer.count_chat,
                               chat["model"], chat_messages, tools)

    async def messages(self, ctx: RequestContext, data: bytes) -> Pieces:
        """POST /v1/messages: the client's body as it is to a deployment that speaks Anthropic's
        format (its answer back as it came, native.py), translated for the others."""
        body = native.read(await self._body(ctx, data))
        chat, model = body.chat, body.chat["model"]
        ctx.native_body, ctx.native_only = body.body, body.only
        self._betas(ctx)
        if not chat.get("stream"):
            async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, chat)) as pieces:
                async for _, answer in pieces:
                    yield JSON, answer if ctx.native else orjson.dumps(
                        messages_answer.from_chat(orjson.loads(answer), model))
            return
        # The estimate message_start carries when translated, counted while the provider starts
        # (not when every deployment takes the body natively: it would go unused).
        estimate = None if self._all_native(model) else asyncio.ensure_future(self._estimate(chat))
        stream: messages_answer.MessagesStream | None = None
        try:
            async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, chat)) as pieces:
                async for _, piece in pieces:
                    if ctx.native:
                        yield SSE, native.Errors.feed(piece)
                        continue
                    if stream is None:
                        count = await (estimate or self._estimate(chat))
                        stream = messages_answer.MessagesStream(model, count)
                    out = stream.feed(piece)
                    if out:
                        yield SSE, out
        finally:
            if estimate is not None:
                estimate.cancel()

    def _all_native(self, model: str) -> bool:
        try:
            targets = self._routes.targets(model, Endpoint.CHAT)
        except ApiError:
            return False  # the gateway says why
        return all(speaks_messages(self._providers[t.deployment.provider], t.upstream_model)
                   for t in targets)

    def _betas(self, ctx: RequestContext) -> None:
        passed = native.betas(ctx.anthropic_beta)
        dropped = [b for b in ctx.anthropic_beta if b not in passed]
        ctx.anthropic_beta = passed
        if dropped:  # said, not silently ignored
            ctx.headers.append((DROPPED_BETAS_HEADER, ",".join(dropped)))

    async def count_message_tokens(self, ctx: RequestContext, data: bytes) -> tuple[bytes, str]:
        """POST /v1/messages/count_tokens: the provider's own count where its format has one
        (Anthropic's), else a local count marked as an estimate."""
        body = native.read(await self._body(ctx, data), counting=True)
        chat, model = body.chat, body.chat["model"]
        caller = await self._admission.admit(ctx.key, "")
        if caller.allowed_models and not model_allowed(caller.allowed_models, model):
            raise model_refused(model)
        self._betas(ctx)
        # 404 for a model nobody serves; the first healthy Anthropic deployment counts
        healthy = [t for t in self._routes.targets(model, Endpoint.CHAT) if t.deployment.stats.healthy]
        for target in healthy:
            provider = self._providers[target.deployment.provider]
            count = getattr(provider, "count_message_tokens", None)
            if count is None or not speaks_messages(provider, target.upstream_model):
                continue
            answer = await count(Call(
                endpoint=Endpoint.CHAT, body=chat, model=model, upstream_model=target.upstream_model,
                deployment=target.deployment, request_id=ctx.request_id, native=body.body,
                betas=ctx.anthropic_beta))
            if answer is not None:
                return answer, "provider"
        return orjson.dumps({"input_tokens": await self._estimate(chat)}), "estimate"

    async def responses(self, ctx: RequestContext, data: bytes) -> Pieces:
        """POST /v1/responses: stored (and continuing a stored one) when asked."""
        caller = await self._admission.admit(ctx.key, "")  # 401 before 400, as on every route
        body = parse_json(data)
        chat = responses.to_chat(body, storing=self._storing)
        store = responses.stores(body, self._storing)
        skeleton = shell(body, store=store)
        previous = body.get("previous_response_id")
        record = None
        if self._stored is not None and previous is not None:
            chat = responses.continued(chat, body, await self._stored.history(caller, previous))
        if self._stored is not None and store:
            record = await self._stored.begin(caller, skeleton, responses.input_items(body["input"]))
        stream = ResponsesStream(skeleton) if chat.get("stream") else None
        try:
            async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, chat)) as pieces:
                async for _, piece in pieces:
                    if stream is None:
                        whole = from_chat(orjson.loads(piece), skeleton)
                        if record is not None:
                            await record.end(whole)
                        yield JSON, orjson.dumps(whole)
                        continue
                    out = stream.feed(piece)
                    if record is not None and stream.done and not record.ended:
                        await record.end(stream.result())  # before the client has the last event
                    if out:
                        yield SSE, out
        finally:
            if record is not None and not record.ended:
                _cut(record, stream)

    async def get_response(self, ctx: RequestContext, response_id: str) -> bytes:
        """GET /v1/responses/{response_id}: the stored response object."""
        caller = await self._admission.admit(ctx.key, "")
        if self._stored is None:
            raise not_found(response_id)
        return await self._stored.get(caller, response_id)

    async def delete_response(self, ctx: RequestContext, response_id: str) -> bytes:
        """DELETE /v1/responses/{response_id}."""
        caller = await self._admission.admit(ctx.key, "")
        if self._stored is None:
            raise not_found(response_id)
        await self._stored.delete(caller, response_id)
        return orjson.dumps({"id": response_id, "object": "response", "deleted": True})


    async def cancel_response(self, ctx: RequestContext, response_id: str) -> bytes:
        """POST /v1/responses/{response_id}/cancel: OpenAI cancels only responses created with
        background: true; this gateway refuses background, so every stored response is a
        synchronous one, answered as OpenAI answers it (a 400), and an unknown one is a 404."""
        caller = await self._admission.admit(ctx.key, "")
        if self._stored is None:
            raise not_found(response_id)
        await self._stored.get(caller, response_id)
        raise InvalidRequest("Cannot cancel a synchronous response. Only responses created with "
                             "'background': true can be cancelled, and this gateway does not "
                             "create background responses.", param="response_id")

    async def list_input_items(self, ctx: RequestContext, response_id: str, *, after: str | None,
                          limit: int | None, order: str | None, include: list[str]) -> bytes:
        """GET /v1/responses/{response_id}/input_items: one page of its own input items."""
        caller = await self._admission.admit(ctx.key, "")
        if self._stored is None:
            raise not_found(response_id)
        items = await self._stored.input_items(caller, response_id)
        return orjson.dumps(input_items.page(response_id, items, after=after, limit=limit,
                                             order=order, include=include))


def _cut(record: Record, stream: ResponsesStream | None) -> None:
    """A response that did not end as it should: a stream whose id the client saw is kept as it
    received it (`failed` with the error, or `incomplete`); any other is removed (refused before
    any answer, or its client gone before a whole one: nobody has its id)."""
    if stream is not None and stream.started:
        record.end_later(stream.result())
    else:
        record.remove_later()


def anthropic_shaped(error: ApiError) -> ApiError:
    """The same error, rendered by the edge as Anthropic's body (x-error-shape), with Anthropic's
    status: an overloaded provider is its 529 overloaded_error here (a 503 on OpenAI's routes)."""
    error.shape = "anthropic"
    if isinstance(error, ProviderOverloaded):
        error.http_status = 529
    return error
