"""One request, end to end: admit, validate, route, call the provider (failing over) within one
deadline, stream back, and record usage. Every edge RPC and its typed twin run this same code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import orjson
import structlog
from switchboard_common.admission import Admission, model_refused
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    NotImplementedYet,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from switchboard_common.models import model_allowed

from switchboard_router import spans
from switchboard_router.budgets import Budgets
from switchboard_router.cache import CACHE_HEADER, Entry, Plan, Recording, ResponseCache
from switchboard_router.cache.replay import replay
from switchboard_router.codecs import sse
from switchboard_router.costs import Costs
from switchboard_router.deadlines import deadline_error, first_piece, set_deadlines
from switchboard_router.decisions import announce, count_fault
from switchboard_router.domain import (
    Caller,
    Endpoint,
    ParsedRequest,
    RequestContext,
    Target,
    Tokens,
)
from switchboard_router.limits import Limiter
from switchboard_router.pipeline import AnswerObserver, Pipeline, annotate
from switchboard_router.preference import check_preferred, fill_model, prefer
from switchboard_router.retries import Retrier
from switchboard_router.providers.base import Call, Provider, Reply, StreamTally, speaks_messages
from switchboard_router.routing import Routes
from switchboard_router.stream_objects import stream_chunks, whole_object
from switchboard_router.usage import Exchange, Outcome, UsageRecorder
from switchboard_router.validation import parse_json, validate

JSON = "application/json"
SSE = "text/event-stream"
# Failures worth another deployment: the provider, not the request, is the problem.
RETRYABLE = (RateLimited, UpstreamError, UpstreamTimeout)
# Less than this left of the deadline: no further attempt is worth starting.
_LAST_CHANCE = 0.05

_log = structlog.get_logger("gateway")
T = TypeVar("T")


class _Midway(Exception):
    """A stream failed after its first bytes: the client already has a 200 and some chunks."""

    def __init__(self, error: ApiError) -> None:
        self.error = error


class Gateway:
    def __init__(self, admission: Admission, routes: Routes, providers: Mapping[str, Provider],
                 pipeline: Pipeline, usage: UsageRecorder, *, moderation_model: str,
                 request_timeout: float, limits: Limiter, budgets: Budgets | None = None,
                 costs: Costs | None = None, retrier: Retrier | None = None,
                 cache: ResponseCache | None = None) -> None:
        self._admission = admission
        self._limits = limits
        self._routes = routes
        self._providers = providers
        self._pipeline = pipeline
        self._usage = usage
        self._moderation_model = moderation_model
        self._request_timeout = request_timeout
        self._budgets = budgets  # reserve-then-settle against leased budget slices (budgets.py)
        self._costs = costs  # the cost shown to the caller (costs.py)
        self._retrier = retrier  # passes again over the deployments (retries.py)
        self._cache = cache  # answers kept for requests that opt in (cache/)

    def serve(self, endpoint: Endpoint, ctx: RequestContext,
              body: bytes | dict[str, Any]) -> AsyncGenerator[tuple[str, bytes], None]:
        """For the edge: (content type, bytes) messages, one JSON message or SSE messages ending in
        [DONE]. An ApiError raised before the first message is the whole answer; after it, the
        stream carries the error as an event instead, which the OpenAI SDKs raise (envoy-edge.md §3c)."""
        return self._serve(endpoint, ctx, body, None)

    def serve_objects(self, endpoint: Endpoint, ctx: RequestContext, body: dict[str, Any],
                      make: Callable[[dict[str, Any]], T]) -> AsyncGenerator[T, None]:
        """For the typed twins: `make` of each of the answer's JSON objects (the whole answer, or
        each chunk of a stream), each parsed once. An error is raised wherever it happens."""
        return self._serve(endpoint, ctx, body, make)

    async def _serve(self, endpoint: Endpoint, ctx: RequestContext, body: bytes | dict[str, Any],
                     make: Callable[[dict[str, Any]], Any] | None) -> AsyncGenerator[Any, None]:
        ex = Exchange(request_id=ctx.request_id, endpoint=endpoint, started=ctx.started)
        try:
            request, caller = await self._admit(endpoint, ctx, body, ex)
            ex.quota = await self._limits.admit_request(caller, request, body)  # 429 when spent
            if ex.quota is not None:
                ctx.headers.extend(ex.quota.headers)
            set_deadlines(ctx, request.stream, self._request_timeout)
            if ctx.preferred_model:
                self._check_preferred(request, ctx.preferred_model)
            plan, entry = await self._cached(ctx, request, caller)
            if entry is not None:
                async for message in replay(entry, ex, ctx, make):
                    yield message
                return
            targets = await self._plan(request, ctx)
            if self._budgets is not None:  # 402 before dispatch when the budget is spent
                ex.reserve(await self._budgets.reserve(caller, request, targets))
            self._usage.begin(ex)  # journaled from here on (with its reservation): a crash bills it
            observer = None
            if self._pipeline.needed(request, caller, ctx):
                prepared = await self._pipeline.prepare(request, caller, ctx, ex.event_id)
                request, observer = prepared.request, prepared.observer
                ex.body = request.body  # what the provider is sent: its prompt, if it counts none
            if request.stream:
                # aclosing: when the client goes away, the provider call is closed (and its stats
                # settled) before the usage is recorded, not whenever the generator is collected.
                recording = self._cache.recording(plan) if self._cache is not None else None
                async with aclosing(self._stream(request, ctx, targets, ex, observer,
                                                 recording)) as pieces:
                    if make is not None:
                        async for chunk in stream_chunks(pieces, ex):
                            yield make(chunk)
                    else:
                        async for data in pieces:
                            yield SSE, data
                if recording is not None and ex.outcome is Outcome.SUCCESS:
                    # The whole stream reached the client and ended well (a cut or blocked one
                    # raised _Midway, a client gone GeneratorExit): kept as it was sent.
                    self._keep(plan, recording.data(), True, ex.tally.usage if ex.tally else None,
                               ctx.native)
            else:
                reply = await self._retrying(request, ctx, targets,
                                             lambda ts: self._unary(request, ctx, ts, ex))
                if self._costs is not None:
                    await self._costs.on_answer(ex, reply.usage, ctx)
                data = reply.data if observer is None else await observer.piece(reply.data)
                self._keep(plan, data, False, reply.usage, ctx.native)
                ex.first_byte = time.perf_counter()
                yield (JSON, data) if make is None else make(whole_object(reply, data))
                if observer is not None:
                    await observer.end(True)
        except _Midway as midway:
            if make is not None:
                raise midway.error from None
            # What an output guardrail released before it stopped the stream goes out first.
            released = getattr(midway.error, "released", b"")
            yield SSE, released + sse.encode(orjson.dumps(midway.error.to_openai()))
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
            self._limits.release(ex.quota)
            if ctx.headers:
                annotate(ex, ctx)
            self._usage.record(ex)

    async def _cached(self, ctx: RequestContext, request: ParsedRequest,
                      caller: Caller) -> tuple[Plan | None, Entry | None]:
        """The cache's plan for this request (None: it takes no part) and the answer it holds."""
        if self._cache is None:
            return None, None
        plan = self._cache.plan(ctx, request, caller.tenant_id,
                                lambda: self._pipeline.needed(request, caller, ctx),
                                keyed=caller.cache_responses)
        if plan is None:
            return None, None
        entry = await self._cache.get(plan)
        ctx.headers.append((CACHE_HEADER, "miss" if entry is None else "hit"))
        return plan, entry

    def _keep(self, plan: Plan | None, data: bytes | None, stream: bool,
              usage: Tokens | None, native: bool) -> None:
        if self._cache is not None and plan is not None and data is not None:
            self._cache.keep(plan, data, stream, usage, native)

    def _attempt_failed(self, exc: ApiError, target: Target, ctx: RequestContext) -> ApiError:
        """After an attempt failed before any byte: the error to report if no later deployment
        serves the request. Raises when no further attempt fits in what is left of the deadline."""
        left = ctx.first_byte_deadline - time.perf_counter()
        if isinstance(exc, UpstreamTimeout) and left < _LAST_CHANCE:
            # The request's deadline ran out, not the deployment's patience: no fault of its own.
            raise deadline_error(ctx, ctx.first_byte_deadline, self._request_timeout) from None
        count_fault(target, exc)
        _log.warning("deployment failed", deployment=target.deployment.name,
                     provider=target.deployment.provider, error=exc.code, status=exc.http_status)
        if left < _LAST_CHANCE:
            raise exc
        return exc

    def _midway_failed(self, exc: ApiError, target: Target, ctx: RequestContext) -> ApiError:
        if isinstance(exc, UpstreamTimeout) and ctx.deadline - time.perf_counter() < _LAST_CHANCE:
            return deadline_error(ctx, ctx.deadline, self._request_timeout)
        count_fault(target, exc)
        return exc

    async def _admit(self, endpoint: Endpoint, ctx: RequestContext, body: bytes | dict[str, Any],
                     ex: Exchange) -> tuple[ParsedRequest, Caller]:
        # The key before the body, as OpenAI does: bad JSON without a valid key is a 401.
        caller = await self._admission.admit(ctx.key, "")
        ex.key_id, ex.tenant_id, ex.user_id = caller.key_id, caller.tenant_id, caller.user_id
        ctx.allowed_models = caller.allowed_models
        ex.body = body = body if isinstance(body, dict) else parse_json(body)
        fill_model(body, ctx.preferred_model)
        request = validate(endpoint, body)
        if endpoint is Endpoint.MODERATIONS and not request.model:
            request.model = self._moderation_model
        ex.model, ex.stream, ex.session_id = request.model, request.stream, request.session_id or ""
        if caller.allowed_models and not model_allowed(caller.allowed_models, request.model):
            raise model_refused(request.model)  # checked here against the cached verdict
        return request, caller

    def _check_preferred(self, request: ParsedRequest, preferred: str) -> None:
        try:
            deployments = self._routes.targets(request.model, request.endpoint)
        except ApiError:
            return  # an unknown model: the plan says so
        check_preferred(deployments, request.model, preferred)

    async def _plan(self, request: ParsedRequest, ctx: RequestContext) -> Sequence[Target]:
        """The strategy's order of the deployments available now, X-Preferred-Model's first."""
        try:
            targets = await self._routes.choose(request.model, request.endpoint,
                                                stream=request.stream, allowed=ctx.allowed_models)
            if ctx.native_only:  # a field only Anthropic's format carries: its deployments only
                native = [t for t in targets if speaks_messages(
                    self._providers[t.deployment.provider], t.upstream_model)]
                targets = native or targets  # none: the first attempt's 400 says why
            return prefer(targets, request.model, ctx.preferred_model)
        except NotFound as exc:
            if request.endpoint is Endpoint.MODERATIONS and "model" not in request.body:
                raise NotImplementedYet(
                    "Moderations need an OpenAI-compatible provider with a moderation model "
                    f"('{request.model}'). {exc.message}") from None
            raise

    async def _retrying(self, request: ParsedRequest, ctx: RequestContext, targets: Sequence[Target],
                        one_pass: Callable[[Sequence[Target]], Awaitable[T]]) -> T:
        """One pass over the deployments, retried (retries.py), then the model's fallbacks for
        the error that ended it (a context window exceeded, a content policy: fallbacks.py)."""
        try:
            if self._retrier is None:
                return await one_pass(targets)
            return await self._retrier.run(targets, lambda: self._plan(request, ctx), one_pass,
                                           ctx.first_byte_deadline)
        except ApiError as exc:
            others = self._routes.error_fallbacks(request.model, request.endpoint, exc,
                                                  stream=request.stream, allowed=ctx.allowed_models)
            if not others:
                raise
            _log.info("error fallback", model=request.model, error=exc.code)
            return await one_pass(others)

    def _call(self, request: ParsedRequest, ctx: RequestContext, target: Target) -> Call:
        provider = self._providers[target.deployment.provider]
        native = ctx.native_body if ctx.native_body is not None and \
            speaks_messages(provider, target.upstream_model) else None
        if native is None and ctx.native_only:  # the translation would have to drop it
            raise InvalidRequest(
                f"'{ctx.native_only}' can only be sent as it is, to a deployment that speaks "
                f"Anthropic's Messages API ('{target.deployment.name}' of '{request.model}' does "
                "not, or a guardrail redacted the request).", param=ctx.native_only,
                code="unsupported_parameter")
        ctx.native = native is not None  # the answer's format: the last attempt's is the answer
        return Call(endpoint=request.endpoint, body=request.body, model=request.model,
                    upstream_model=target.upstream_model, deployment=target.deployment,
                    request_id=ctx.request_id, include_usage=request.include_usage,
                    deadline=ctx.deadline, native=native, betas=ctx.anthropic_beta)

    async def _unary(self, request: ParsedRequest, ctx: RequestContext, targets: Sequence[Target],
                     ex: Exchange) -> Reply:
        error: ApiError | None = None
        for target in targets:
            stats = target.deployment.stats
            stats.begin()
            ex.target, ex.attempts = target, ex.attempts + 1
            started = time.perf_counter()
            try:
                reply = await self._providers[target.deployment.provider].send(
                    self._call(request, ctx, target))
            except RETRYABLE as exc:
                spans.attempt(ex, target, started, exc.code or exc.error_type)
                error = self._attempt_failed(exc, target, ctx)
                continue
            finally:
                stats.end()
            spans.attempt(ex, target, started)
            stats.answered(time.perf_counter() - started)
            ex.answered, ex.usage, ex.completion_text = True, reply.usage, reply.text
            announce(ctx, target, ex.attempts)
            return reply
        assert error is not None, "a model always has a deployment to try"
        raise error

    async def _open_stream(self, request: ParsedRequest, ctx: RequestContext,
                           targets: Sequence[Target], ex: Exchange
                           ) -> tuple[Target, StreamTally, AsyncGenerator[bytes, None], bytes]:
        """The first deployment to start answering, its stream and its first bytes; the ones
        before it failed before sending anything, so the client saw none of them."""
        error: ApiError | None = None
        for target in targets:
            call = self._call(request, ctx, target)
            stats = target.deployment.stats
            stats.begin()
            ex.target, ex.attempts = target, ex.attempts + 1
            started = time.perf_counter()
            try:
                tally, pieces = self._providers[target.deployment.provider].stream(call)
            except BaseException:
                stats.end()
                raise
            try:
                # The client's wait for the answer to begin, or the deployment's own first-byte
                # timeout, whichever ends first (the attempt's other timeouts cover the rest).
                by = min(ctx.first_byte_deadline,
                         started + target.deployment.first_byte_timeout_seconds)
                first = await (anext(pieces, None) if by >= ctx.deadline else first_piece(pieces, by))
                if first is None:
                    raise UpstreamError("The provider sent an empty stream.")
            except BaseException as exc:
                await pieces.aclose()
                stats.end()
                if not isinstance(exc, RETRYABLE):
                    raise
                spans.attempt(ex, target, started, exc.code or exc.error_type)
                error = self._attempt_failed(exc, target, ctx)
                continue
            spans.attempt(ex, target, started)  # a stream's attempt: until its first bytes
            stats.answered(time.perf_counter() - started, stream=True)
            announce(ctx, target, ex.attempts)
            return target, tally, pieces, first
        assert error is not None, "a model always has a deployment to try"
        raise error

    async def _stream(self, request: ParsedRequest, ctx: RequestContext, targets: Sequence[Target],
                      ex: Exchange, observer: AnswerObserver | None,
                      recording: Recording | None = None) -> AsyncGenerator[bytes, None]:
        target, tally, pieces, first = await self._retrying(
            request, ctx, targets, lambda ts: self._open_stream(request, ctx, ts, ex))
        ex.answered, ex.tally, ex.first_byte = True, tally, time.perf_counter()
        completed = False
        try:
            # Puts the cost into the usage chunk, once the provider's usage is known (inside the
            # try: a client gone while the rates are fetched still closes the provider's stream).
            mark = await self._costs.stream_marker(ex, ctx) if self._costs is not None else None
            # The hook for output guardrails and memory: every piece passes the observer, if any.
            if mark is not None and tally.usage is not None:
                first, mark = mark(first, tally.usage), None
            first = first if observer is None else await observer.piece(first)
            if recording is not None:
                recording.add(first)
            yield first
            async for data in pieces:
                if mark is not None and tally.usage is not None:
                    data, mark = mark(data, tally.usage), None
                if observer is not None:
                    data = await observer.piece(data)
                if recording is not None:
                    recording.add(data)
                yield data
            completed = True
            if tally.error is not None:
                ex.failed(tally.error)
        except ApiError as exc:
            if isinstance(exc, RETRYABLE):
                exc = self._midway_failed(exc, target, ctx)
            ex.failed(exc)
            _log.warning("stream failed midway", deployment=target.deployment.name, error=exc.code)
            raise _Midway(exc) from None
        finally:
            await pieces.aclose()
            target.deployment.stats.end()
            if observer is not None:
                await observer.end(completed)
