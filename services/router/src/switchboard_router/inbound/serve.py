"""The inbound routes' driver: the client's body translated to Chat Completions, served by the
gateway's one request path (admission, limits, budgets, guardrails, memory hooks, one usage
record), and its answer translated back. The translations are pure (messages.py, responses.py,
responses_answer.py); this module only wires them to the gateway and to stored responses."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson
from switchboard_common.admission import Admission, model_refused
from switchboard_common.errors import ApiError
from switchboard_common.models import model_allowed

from switchboard_router.domain import Endpoint, RequestContext
from switchboard_router.gateway import JSON, SSE, Gateway
from switchboard_router.inbound import messages, responses
from switchboard_router.inbound.responses_answer import ResponsesStream, from_chat, shell
from switchboard_router.routing import Routes
from switchboard_router.stored_responses import Record, StoredResponses, not_found
from switchboard_router.tokens import Tokenizer, chat_chars, in_worker
from switchboard_router.validation import parse_json

# count_tokens' answer says where its number came from: the provider, or this local estimate.
COUNT_SOURCE_HEADER = "x-switchboard-token-count"

Pieces = AsyncGenerator[tuple[str, bytes], None]


class Inbound:
    def __init__(self, gateway: Gateway, admission: Admission, routes: Routes,
                 tokenizer: Tokenizer, stored: StoredResponses | None = None, *,
                 storing: bool = False) -> None:
        self._gateway = gateway
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
        """POST /v1/messages."""
        chat = messages.to_chat(await self._body(ctx, data))
        model = chat["model"]
        if not chat.get("stream"):
            async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, chat)) as pieces:
                async for _, answer in pieces:
                    yield JSON, orjson.dumps(messages.from_chat(orjson.loads(answer), model))
            return
        stream = messages.MessagesStream(model, await self._estimate(chat))
        async with aclosing(self._gateway.serve(Endpoint.CHAT, ctx, chat)) as pieces:
            async for _, piece in pieces:
                out = stream.feed(piece)
                if out:
                    yield SSE, out

    async def count_message_tokens(self, ctx: RequestContext, data: bytes) -> tuple[bytes, str]:
        """POST /v1/messages/count_tokens: a local count, marked as an estimate (the provider's
        own counter is not called yet)."""
        chat = messages.to_chat(await self._body(ctx, data), counting=True)
        caller = await self._admission.admit(ctx.key, "")
        if caller.allowed_models and not model_allowed(caller.allowed_models, chat["model"]):
            raise model_refused(chat["model"])
        self._routes.check(chat["model"], Endpoint.CHAT)  # 404 for a model nobody serves
        count = await self._estimate(chat)
        return orjson.dumps({"input_tokens": count}), "estimate"

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


def _cut(record: Record, stream: ResponsesStream | None) -> None:
    """A response that did not end as it should: a stream whose id the client saw is kept as it
    received it (`failed` with the error, or `incomplete`); any other is removed (refused before
    any answer, or its client gone before a whole one: nobody has its id)."""
    if stream is not None and stream.started:
        record.end_later(stream.result())
    else:
        record.remove_later()


def anthropic_shaped(error: ApiError) -> ApiError:
    """The same error, rendered by the edge as Anthropic's body (x-error-shape)."""
    error.shape = "anthropic"
    return error
