"""How a GatewayService call's answer leaves the router: the call's headers (initial metadata, or
trailing metadata for a whole answer in one batch), a stream's messages and its trailers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TypeVar

import grpc
from google.api import httpbody_pb2
from switchboard_common.errors import InvalidRequest

from switchboard_router.domain import RequestContext
from switchboard_router.gateway import JSON

HttpBody = httpbody_pb2.HttpBody
T = TypeVar("T")


async def unary(context, ctx: RequestContext, answers: AsyncGenerator[T, None]) -> T:
    """A typed twin's whole answer: the last (only) object, then the call's headers."""
    answer = await last(answers)
    await send_headers(context, ctx)
    return answer


async def streamed(context, ctx: RequestContext,
                    objects: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """A stream (of HttpBody for the edge, of typed objects for the twins): headers with the
    first object (an error before it leaves as the whole status), trailers at the end."""
    first = True
    async with aclosing(objects) as out:
        async for obj in out:
            if first:
                await send_headers(context, ctx)
                first = False
            yield obj
    set_trailers(context, ctx)


async def relay(context, ctx: RequestContext, pieces: AsyncGenerator[tuple[str, bytes], None]
                 ) -> AsyncGenerator[HttpBody, None]:
    """_streamed of the pieces as HttpBody messages, in one layer. Initial metadata only with the
    first message: an error before it must leave as a trailers-only response, which the edge's
    Lua turns into OpenAI's body."""
    first = True
    async with aclosing(pieces) as out:
        async for content_type, data in out:
            if first:
                await send_headers(context, ctx)
                first = False
            yield HttpBody(content_type=content_type, data=data)
    set_trailers(context, ctx)


async def whole(context, ctx: RequestContext, pieces: AsyncGenerator[tuple[str, bytes], None]
                 ) -> HttpBody:
    """The one JSON message of an answer, its headers as trailing metadata: grpc.aio then sends
    the (empty) initial metadata, the message and the status in one batch, where a separate
    send_initial_metadata is a write (and a wake of the edge) of its own. The edge's route moves
    the trailers into the response headers (edge/README.md). Read to its end: the gateway
    records the usage there."""
    answer = b""
    async with aclosing(pieces) as out:
        async for content_type, answer in out:  # noqa: B007 - the one message is the answer
            if content_type != JSON:  # a body with "stream": true from a gRPC client
                raise InvalidRequest('This method answers whole: a body with "stream": true goes '
                                     'to the method of the same name without "Whole".',
                                     param="stream", code="unsupported_value")
    context.set_trailing_metadata((("x-request-id", ctx.request_id), *ctx.headers, *ctx.trailers))
    return HttpBody(content_type=JSON, data=answer)


async def last(messages: AsyncGenerator[T, None]) -> T:
    """The last (only) message of a unary answer; the generator closed however it ends."""
    out = None
    async with aclosing(messages) as it:
        async for out in it:  # noqa: B007 - the last message is the whole answer
            pass
    assert out is not None, "a unary answer is always one message"
    return out


async def send_headers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    await context.send_initial_metadata((("x-request-id", ctx.request_id), *ctx.headers))


def set_trailers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    if ctx.trailers:  # e.g. a stream's cost, known only at its end
        context.set_trailing_metadata(tuple(ctx.trailers))
