"""One deadline per request, every attempt and failover included, and the 504 that names the
limit which ran out: the gateway's request timeout, the caller's gRPC deadline, the SDK's own
timeout (x-stainless-timeout), each taken a little early so the answer beats the caller's give-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from switchboard_common.errors import UpstreamTimeout

from switchboard_router.domain import RequestContext


def set_deadlines(ctx: RequestContext, stream: bool, request_timeout: float) -> None:
    """The gateway's request timeout, cut to the caller's gRPC deadline. The SDKs' timeout bounds
    the wait for the answer to begin, as the SDKs apply it (the whole of a JSON answer, a stream's
    first bytes); it does not cut a stream that is flowing."""
    timeout = request_timeout
    if ctx.grpc_timeout is not None:
        timeout = min(timeout, _before(ctx.grpc_timeout))
    ctx.deadline = ctx.first_byte_deadline = ctx.started + timeout
    if ctx.sdk_timeout is not None:
        begin = ctx.started + _before(ctx.sdk_timeout)
        if begin < ctx.deadline:
            ctx.first_byte_deadline = begin
            if not stream:
                ctx.deadline = begin


def deadline_error(ctx: RequestContext, deadline: float, request_timeout: float) -> UpstreamTimeout:
    """A 504 naming the limit that ran out."""
    bounds = [(request_timeout, "the gateway's request timeout "
                                "(SWITCHBOARD_ROUTER_REQUEST_TIMEOUT_SECONDS)")]
    if ctx.grpc_timeout is not None:
        bounds.append((_before(ctx.grpc_timeout), "the caller's gRPC deadline"))
    if ctx.sdk_timeout is not None and deadline == ctx.first_byte_deadline:
        bounds.append((_before(ctx.sdk_timeout), "the client's timeout (x-stainless-timeout)"))
    return UpstreamTimeout(f"The request did not complete within {deadline - ctx.started:.3g} s, "
                           f"{min(bounds)[1]}.", code="request_timeout")


def _before(caller_timeout: float) -> float:
    """A little less than the caller waits (a tenth, at most a second), so that the gateway's
    answer, and the usage record saying why, come before the caller gives up."""
    return caller_timeout - min(1.0, caller_timeout / 10)


async def first_piece(pieces: AsyncGenerator[bytes, None], by: float) -> bytes | None:
    """The stream's first bytes, by `by` (time.perf_counter())."""
    try:
        async with asyncio.timeout(by - time.perf_counter()):
            return await anext(pieces, None)
    except TimeoutError:
        raise UpstreamTimeout("The provider did not start answering in time.") from None


# How long the OpenAI SDKs wait for an answer, in seconds: x-stainless-timeout (Node) and
# x-stainless-read-timeout (Python). A value that is not a positive number is no bound.
SDK_TIMEOUT_HEADERS = ("x-stainless-timeout", "x-stainless-read-timeout")


def sdk_timeout(metadata) -> float | None:
    out: float | None = None
    for name, value in metadata or ():
        if name in SDK_TIMEOUT_HEADERS:
            try:
                seconds = float(value)
            except ValueError:
                continue
            if 0 < seconds < float("inf") and (out is None or seconds < out):
                out = seconds
    return out
