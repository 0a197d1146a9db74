"""One request, end to end: validate, admit, route, call the provider (failing over), stream back,
and record usage. Every edge RPC and its typed twin run this same code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import orjson
import structlog
from switchboard_common.errors import (
    ApiError,
    NotFound,
    NotImplementedYet,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

from switchboard_router.admission import Admission
from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext, Target
from switchboard_router.pipeline import Pipeline
from switchboard_router.providers.base import Call, Provider
from switchboard_router.routing import Routes
from switchboard_router.usage import Exchange, Outcome, UsageRecorder
from switchboard_router.validation import validate

JSON = "application/json"
SSE = "text/event-stream"
# Failures worth another deployment: the provider, not the request, is the problem.
RETRYABLE = (RateLimited, UpstreamError, UpstreamTimeout)

_log = structlog.get_logger("gateway")


class Gateway:
    def __init__(self, admission: Admission, routes: Routes, providers: Mapping[str, Provider],
                 pipeline: Pipeline, usage: UsageRecorder, *, moderation_model: str) -> None:
        self._admission = admission
        self._routes = routes
        self._providers = providers
        self._pipeline = pipeline
        self._usage = usage
        self._moderation_model = moderation_model

    async def serve(self, endpoint: Endpoint, ctx: RequestContext,
                    body: dict[str, Any]) -> AsyncIterator[tuple[str, bytes]]:
        """(content type, bytes) messages: one JSON message, or SSE messages ending in [DONE].
        An ApiError raised before the first message is the whole answer; after it, the stream
        carries the error as an event instead."""
        ex = Exchange(request_id=ctx.request_id, endpoint=endpoint, started=ctx.started, body=body)
        try:
            request = validate(endpoint, body)
            if endpoint is Endpoint.MODERATIONS and not request.model:
                request.model = self._moderation_model
            ex.model, ex.stream, ex.session_id = request.model, request.stream, request.session_id or ""
            caller = await self._admission.admit(ctx.key, request.model)
            ex.key_id, ex.tenant_id = caller.key_id, caller.tenant_id
            targets = self._plan(request)
            if self._pipeline.needed(request, caller):
                request = await self._pipeline.prepare(request, caller)
            if request.stream:
                # aclosing: when the client goes away, the provider call is closed (and its stats
                # settled) before the usage is recorded, not whenever the generator is collected.
                async with aclosing(self._stream(request, ctx, targets, ex)) as pieces:
                    async for data in pieces:
                        yield SSE, data
            else:
                data = await self._unary(request, ctx, targets, ex)
                ex.first_byte = time.perf_counter()
                yield JSON, data
        except ApiError as exc:
            ex.failed(exc)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            ex.aborted()
            raise
        except Exception:
            ex.outcome, ex.http_status, ex.error_type = Outcome.ERROR, 500, "server_error"
            raise
        finally:
            ex.ended = time.perf_counter()
            self._usage.record(ex)

    def _plan(self, request: ParsedRequest) -> Sequence[Target]:
        try:
            return self._routes.plan(request.model, request.endpoint)
        except NotFound as exc:
            if request.endpoint is Endpoint.MODERATIONS and "model" not in request.body:
                raise NotImplementedYet(
                    "Moderations need an OpenAI-compatible provider with a moderation model "
                    f"('{request.model}'). {exc.message}") from None
            raise

    def _call(self, request: ParsedRequest, ctx: RequestContext, target: Target) -> Call:
        return Call(endpoint=request.endpoint, body=request.body, model=request.model,
                    upstream_model=target.upstream_model, deployment=target.deployment,
                    request_id=ctx.request_id, include_usage=request.include_usage)

    async def _unary(self, request: ParsedRequest, ctx: RequestContext, targets: Sequence[Target],
                     ex: Exchange) -> bytes:
        error: ApiError | None = None
        for target in targets:
            stats = target.deployment.stats
            stats.begin()
            ex.target = target
            started = time.perf_counter()
            try:
                reply = await self._providers[target.deployment.provider].send(
                    self._call(request, ctx, target))
            except RETRYABLE as exc:
                stats.fault()
                error = _failed_over(exc, target)
                continue
            finally:
                stats.end()
            stats.answered(time.perf_counter() - started)
            ex.answered, ex.usage, ex.completion_text = True, reply.usage, reply.text
            return reply.data
        raise error

    async def _stream(self, request: ParsedRequest, ctx: RequestContext, targets: Sequence[Target],
                      ex: Exchange) -> AsyncIterator[bytes]:
        error: ApiError | None = None
        for target in targets:
            stats = target.deployment.stats
            stats.begin()
            ex.target = target
            started = time.perf_counter()
            tally, pieces = self._providers[target.deployment.provider].stream(
                self._call(request, ctx, target))
            try:
                try:
                    first = await anext(pieces)
                except StopAsyncIteration:
                    first = None
                except RETRYABLE as exc:  # nothing sent yet: the next deployment may serve it
                    stats.fault()
                    error = _failed_over(exc, target)
                    continue
                if first is None:
                    stats.fault()
                    error = UpstreamError("The provider sent an empty stream.")
                    continue
                stats.answered(time.perf_counter() - started)
                ex.answered, ex.tally, ex.first_byte = True, tally, time.perf_counter()
                yield first
                try:
                    async for data in pieces:
                        yield data
                except ApiError as exc:
                    # The client already has a 200 and some chunks: say it in the stream, which
                    # the OpenAI SDKs raise as APIError (envoy-edge.md §3c).
                    if isinstance(exc, RETRYABLE):
                        stats.fault()
                    ex.failed(exc)
                    _log.warning("stream failed midway", deployment=target.deployment.name,
                                 error=exc.code)
                    yield b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n"
                    return
                if tally.error is not None:
                    ex.failed(tally.error)
                return
            finally:
                await pieces.aclose()
                stats.end()
        raise error


def _failed_over(exc: ApiError, target: Target) -> ApiError:
    _log.warning("deployment failed", deployment=target.deployment.name, provider=target.deployment.provider,
                 error=exc.code, status=exc.http_status)
    return exc
