"""The server interceptor: request ids, one canonical log line and metrics per RPC, and errors.

Domain code raises `ApiError`; this is the one place that turns it into a gRPC status with the
trailing metadata the edge shapes into OpenAI's error body.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc
import structlog
from prometheus_client import Counter, Histogram

from switchboard_common.errors import ApiError

_log = structlog.get_logger("rpc")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# The call's metadata as _begin read it, with the context it came from: grpc builds a new tuple
# of namedtuples on every invocation_metadata() (one Python call per header).
_metadata: contextvars.ContextVar[tuple[object, Any]] = contextvars.ContextVar(
    "metadata", default=(None, ()))

RPCS = Counter("switchboard_rpc_total", "RPCs served", ["method", "code"])
RPC_SECONDS = Histogram("switchboard_rpc_seconds", "RPC duration", ["method"],
                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))


def current_request_id() -> str:
    """The id of the request being served (from `x-request-id`, or made up for direct clients)."""
    return _request_id.get()


def invocation_metadata(context: grpc.aio.ServicerContext) -> Any:
    """context.invocation_metadata(), read once per call (by the interceptor, when it runs)."""
    seen, metadata = _metadata.get()
    return metadata if seen is context else context.invocation_metadata() or ()


def _begin(context: grpc.aio.ServicerContext, method: str) -> float:
    rid = ""
    metadata = context.invocation_metadata() or ()
    _metadata.set((context, metadata))
    for key, value in metadata:
        if key == "x-request-id" and isinstance(value, str):
            rid = value
            break
    _request_id.set(rid or uuid.uuid4().hex)
    # Only this call's fields are cleared and bound: `service` is added by logs' processors.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=_request_id.get(), method=method)
    return time.perf_counter()


async def _fail(context: grpc.aio.ServicerContext, exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, ApiError):
        await context.abort(exc.grpc_code, exc.message, trailing_metadata=exc.trailing_metadata())
    _log.exception("unhandled error")
    await context.abort(grpc.StatusCode.INTERNAL, "internal error",
                        trailing_metadata=(("x-http-status", "500"), ("x-error-type", "server_error")))
    raise AssertionError("unreachable")


# The metrics' children per method (and code): labels() costs a dozen Python calls a lookup.
_counted: dict[tuple[str, grpc.StatusCode], Counter] = {}
_timed: dict[str, Histogram] = {}


def _finish(method: str, started: float, code: grpc.StatusCode, logged: bool) -> None:
    elapsed = time.perf_counter() - started
    counted = _counted.get((method, code))
    if counted is None:
        counted = _counted[(method, code)] = RPCS.labels(method, code.name)
    counted.inc()
    timed = _timed.get(method)
    if timed is None:
        timed = _timed[method] = RPC_SECONDS.labels(method)
    timed.observe(elapsed)
    if not logged:
        _log.info("rpc", code=code.name, duration_ms=round(elapsed * 1000, 3))


def _code_of(exc: BaseException) -> grpc.StatusCode:
    return exc.grpc_code if isinstance(exc, ApiError) else grpc.StatusCode.INTERNAL


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary, server-streaming and bidirectional handlers; health and reflection pass
    through untouched.

    The wrapped handler of each method is built once and reused: this runs on every call.
    `own_lines`: the methods whose handler writes its own line per call (the router's model
    requests: request_log.py), which carries more than this one would, so one line per call.
    """

    def __init__(self, own_lines: frozenset[str] = frozenset()) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        self._own_lines = own_lines

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if handler is None or method.startswith(("/grpc.health.", "/grpc.reflection.")):
            return handler
        logged = method in self._own_lines
        if handler.unary_unary:
            wrapped = grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method, logged),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        elif handler.unary_stream:
            wrapped = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method, logged),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        elif handler.stream_stream:  # the request is an iterator: wrapped the same way
            wrapped = grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream, method, logged),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        else:
            return handler
        self._wrapped[method] = wrapped
        return wrapped


def _wrap_unary(inner, method: str, logged: bool):
    async def unary(request, context):
        started = _begin(context, method)
        code = grpc.StatusCode.OK
        try:
            return await inner(request, context)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            code = _code_of(exc)
            await _fail(context, exc)
        finally:
            _finish(method, started, code, logged)
    return unary


def _wrap_stream(inner, method: str, logged: bool):
    # A coroutine writing each message (grpc.aio's reader/writer API), not an async generator:
    # grpc.aio never closes a handler's generator when the call ends early, which would leave the
    # provider call under it to the generator's finaliser. Here `aclosing` closes it at once,
    # whether the client went away (the task is cancelled), a write failed or the handler raised.
    async def stream(request, context) -> None:
        started = _begin(context, method)
        code = grpc.StatusCode.OK
        try:
            async with aclosing(inner(request, context)) as messages:
                async for message in messages:
                    try:
                        await context.write(message)
                    except Exception:
                        if context.cancelled() or context.done():  # the client is gone
                            code = grpc.StatusCode.CANCELLED
                            return
                        raise
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            code = _code_of(exc)
            await _fail(context, exc)
        except BaseException:  # the client went away: the task is cancelled
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            _finish(method, started, code, logged)
    return stream

