"""The gRPC instrumentation's server span, only for the calls whose trace is sampled.

The instrumentation builds its span for every call, sampled or not: the attributes, the peer
parsed, the metadata copied twice and extracted, the servicer context proxied. With tracing on
and sampling off that was a third more instructions per router request (README, "make
bench-instructions"). So each call's sampling decision is taken here first, with the SDK's own
sampler on the inputs the SDK would give it (the parent from the propagated context, its trace
id or a new one, the method, SERVER). A sampled call goes through the instrumentation unchanged;
a root among them gets the trace id the decision was taken on (`DecidedIds`), so a trace-id-ratio
sampler keeps its ratio. Any other call only gets, as the current span, the non-recording span
the SDK would have made: its context still propagates (not sampled) to the calls made under it,
and the spans they would start are dropped as a child of a dropped span is.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_OFF, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from switchboard_common.interceptors import invocation_metadata

# The trace id a root call was sampled on, for the SDK's next root span in this call's task.
_decided: contextvars.ContextVar[int] = contextvars.ContextVar("decided_trace_id", default=0)


class DecidedIds(RandomIdGenerator):
    """Random ids, except that a sampled root call's span takes the trace id it was sampled on."""

    def generate_trace_id(self) -> int:
        decided = _decided.get()
        if decided:
            _decided.set(0)
            return decided
        return super().generate_trace_id()


class SampledServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps `traced` (the instrumentation's interceptor): a call is handed to it only when it
    will be sampled. Sits inside switchboard_common.interceptors.ServerInterceptor, which keeps
    the handler this returns per method (so the choice is made in the handler, per call), awaits
    or iterates what it returns, and has read the call's metadata already."""

    def __init__(self, traced: grpc.aio.ServerInterceptor, sampler: Sampler,
                 ids: DecidedIds) -> None:
        self._traced = traced
        self._sampler = sampler
        self._ids = ids
        self._fields = frozenset(propagate.get_global_textmap().fields)
        # ALWAYS_OFF drops every call, ParentBased(ALWAYS_OFF) (parentbased_always_off) every
        # root: the sampler is not asked what it would answer (~30 Python calls a request).
        self._roots_dropped = sampler is ALWAYS_OFF or sampler is DEFAULT_OFF
        self._root_flags = TraceFlags(TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random()
                                      else TraceFlags.DEFAULT)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None

        async def same(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return handler

        traced = await self._traced.intercept_service(same, details)
        if traced is None:  # the instrumentation leaves this method alone (its filter)
            return handler
        method = details.method
        for kind, factory in (("unary_unary", grpc.unary_unary_rpc_method_handler),
                              ("unary_stream", grpc.unary_stream_rpc_method_handler),
                              ("stream_unary", grpc.stream_unary_rpc_method_handler),
                              ("stream_stream", grpc.stream_stream_rpc_method_handler)):
            plain = getattr(handler, kind)
            if plain is not None:
                return factory(self._either(method, plain, getattr(traced, kind),
                                            kind.endswith("_stream")),
                               request_deserializer=handler.request_deserializer,
                               response_serializer=handler.response_serializer)
        return handler

    def _either(self, method: str, plain: Any, traced: Any, streaming: bool) -> Any:
        # Each call in the context the decision gives. It stays the call's: grpc.aio runs each
        # call in a task of its own (interceptors.py's request id relies on the same).
        def either(request: Any, servicer_context: Any) -> Any:
            unsampled = self._unsampled(method, invocation_metadata(servicer_context))
            if unsampled is None:
                return traced(request, servicer_context)
            context_api.attach(unsampled)
            return plain(request, servicer_context)

        if inspect.iscoroutinefunction(plain):
            if streaming:  # written with write() (health's Watch): the instrumentation would
                return plain  # iterate the coroutine, so it stays untraced
            async def unary(request: Any, servicer_context: Any) -> Any:  # what grpc.aio awaits
                return await either(request, servicer_context)
            return unary
        if streaming:
            # The chosen handler's generator itself, no layer of ours around it: the
            # ServerInterceptor this sits in iterates and closes it (grpc.aio, for the methods
            # that one passes through, iterates a generator a handler returns as well).
            return either
        return traced  # a synchronous unary handler: left to the instrumentation

    def _unsampled(self, method: str, metadata: Any) -> context_api.Context | None:
        """The context to run a call in when its trace is not sampled; None when it is (after
        noting a root's trace id for the SDK's span)."""
        carrier = None
        for key, value in metadata:
            if key in self._fields:
                if carrier is None:
                    carrier = {}
                carrier[key] = value
        if carrier is None and self._roots_dropped:  # the sampler's answer known: no need to ask
            return trace.set_span_in_context(NonRecordingSpan(SpanContext(
                self._ids.generate_trace_id(), self._ids.generate_span_id(), is_remote=False,
                trace_flags=self._root_flags)))
        parent = context_api.get_current() if carrier is None else propagate.extract(carrier)
        parent_span = trace.get_current_span(parent).get_span_context()
        root = not parent_span.is_valid
        trace_id = self._ids.generate_trace_id() if root else parent_span.trace_id
        result = self._sampler.should_sample(parent, trace_id, method, SpanKind.SERVER)
        if result.decision.is_recording():
            if root:
                _decided.set(trace_id)
            return None
        flags = (self._root_flags if root else TraceFlags(
            TraceFlags.RANDOM_TRACE_ID if parent_span.trace_flags.random_trace_id
            else TraceFlags.DEFAULT))
        span = NonRecordingSpan(SpanContext(trace_id, self._ids.generate_span_id(), is_remote=False,
                                            trace_flags=flags, trace_state=result.trace_state))
        return trace.set_span_in_context(span, parent)
