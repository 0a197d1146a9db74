"""The gRPC server span only for sampled calls (trace_sampling.py), on a real grpc.aio server with
the interceptors in the order grpc_server.build puts them: a call whose trace is not sampled
runs under the non-recording span the SDK would make (its context propagates, nothing exported);
a sampled one gets the instrumentation's SERVER span, a root's on the trace id it was sampled on
(so a ratio sampler keeps its ratio)."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (ALWAYS_OFF, Decision, ParentBased, Sampler,
                                              SamplingResult)

from switchboard_common.interceptors import ServerInterceptor
from switchboard_common.trace_sampling import DecidedIds, SampledServerInterceptor

PARENT_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN = 0x00F067AA0BA902B7


def _traceparent(sampled: bool) -> str:
    return f"00-{PARENT_TRACE:032x}-{PARENT_SPAN:016x}-{'01' if sampled else '00'}"


class Server:
    """A server with one unary and one server-streaming method, each noting the span current
    while it runs."""

    def __init__(self, sampler: Sampler) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler, id_generator=DecidedIds())
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.seen: list[trace.SpanContext] = []
        self.recording: list[bool] = []

    def _note(self) -> None:
        span = trace.get_current_span()
        self.seen.append(span.get_span_context())
        self.recording.append(span.is_recording())

    async def __aenter__(self) -> grpc.aio.Channel:
        async def unary(request: bytes, context) -> bytes:
            self._note()
            return request

        async def stream(request: bytes, context):
            self._note()
            for part in (b"a", b"b", b"c"):
                yield part

        async def fail(request: bytes, context) -> bytes:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")

        handlers = grpc.method_handlers_generic_handler("test.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail)})
        self.server = grpc.aio.server(interceptors=[ServerInterceptor(), SampledServerInterceptor(
            aio_server_interceptor(tracer_provider=self.provider), self.provider.sampler,
            self.provider.id_generator)])
        self.server.add_generic_rpc_handlers((handlers,))
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        return self.channel

    async def __aexit__(self, *exc_info: object) -> None:
        await self.channel.close()
        await self.server.stop(0)


async def _unary(channel: grpc.aio.Channel, metadata=()) -> bytes:
    return await channel.unary_unary("/test.Echo/Unary")(b"ping", metadata=metadata)


async def _stream(channel: grpc.aio.Channel, metadata=()) -> list[bytes]:
    return [m async for m in channel.unary_stream("/test.Echo/Stream")(b"ping", metadata=metadata)]


async def test_a_not_sampled_parent_gets_no_span_but_its_trace_context_runs_on():
    server = Server(ParentBased(ALWAYS_OFF))  # what the default sampler does with a 00 parent
    async with server as channel:
        assert await _unary(channel, (("traceparent", _traceparent(False)),)) == b"ping"
        assert await _stream(channel, (("traceparent", _traceparent(False)),)) == [b"a", b"b", b"c"]
    assert server.exporter.get_finished_spans() == ()
    assert server.recording == [False, False]
    # The calls made under it carry the trace on, not sampled: the same trace id, a span of its
    # own, flags 00 (as the SDK's own non-recording span would).
    assert all(c.trace_id == PARENT_TRACE and c.is_valid and c.span_id != PARENT_SPAN
               and not c.trace_flags.sampled for c in server.seen)


async def test_a_sampled_parent_gets_the_instrumentations_server_span():
    server = Server(ParentBased(ALWAYS_OFF))
    async with server as channel:
        await _unary(channel, (("traceparent", _traceparent(True)),))
        assert await _stream(channel, (("traceparent", _traceparent(True)),)) == [b"a", b"b", b"c"]
        await _unary(channel)  # a root: ALWAYS_OFF drops it
    spans = server.exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["/test.Echo/Stream", "/test.Echo/Unary"]
    for span in spans:
        assert span.kind == trace.SpanKind.SERVER and span.attributes["rpc.system"] == "grpc"
        assert span.context.trace_id == PARENT_TRACE and span.parent.span_id == PARENT_SPAN
    assert server.recording == [True, True, False]
    assert server.seen[:2] == [s.context for s in sorted(spans, key=lambda s: s.name != "/test.Echo/Unary")]


class EvenIds(Sampler):
    """Samples a trace whose id is even (as a ratio sampler decides on the id), noting each id
    it was asked about."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None) -> SamplingResult:
        self.asked.append(trace_id)
        return SamplingResult(Decision.RECORD_AND_SAMPLE if trace_id % 2 == 0 else Decision.DROP)

    def get_description(self) -> str:
        return "EvenIds"


async def test_a_sampled_root_keeps_the_trace_id_it_was_sampled_on():
    sampler = EvenIds()
    server = Server(sampler)
    async with server as channel:
        for _ in range(20):
            await _unary(channel)
    spans = server.exporter.get_finished_spans()
    assert 0 < len(spans) < 20
    # Each id sampled is a span's: had the SDK drawn another for the span, it would be asked
    # about that one (and drop it half the time).
    assert {s.context.trace_id for s in spans} == {t for t in sampler.asked if t % 2 == 0}
    assert [c.trace_id % 2 == 0 for c in server.seen] == server.recording


@pytest.mark.parametrize("sampled", [True, False])
async def test_an_error_reaches_the_client_either_way(sampled):
    server = Server(ParentBased(ALWAYS_OFF))
    async with server as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary("/test.Echo/Fail")(
                b"x", metadata=(("traceparent", _traceparent(sampled)),))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    spans = server.exporter.get_finished_spans()
    assert [s.attributes["rpc.grpc.status_code"] for s in spans] == (
        [grpc.StatusCode.PERMISSION_DENIED.value[0]] if sampled else [])


class Counting(grpc.aio.ServerInterceptor):
    """The instrumentation's interceptor, counting the calls its handlers serve."""

    def __init__(self, provider: TracerProvider) -> None:
        self._inner = aio_server_interceptor(tracer_provider=provider)
        self.calls = 0

    async def intercept_service(self, continuation, details):
        handler = await self._inner.intercept_service(continuation, details)
        served = handler.unary_stream

        def counted(request, context):
            self.calls += 1
            return served(request, context)

        return grpc.unary_stream_rpc_method_handler(
            counted, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


async def test_a_handler_returning_its_generator_goes_to_the_instrumentation_only_when_sampled():
    # The router's servicer returns its generator (one layer less). Left to the instrumentation,
    # its unsampled calls paid for the span machinery: a quarter more router instructions.
    server = Server(ParentBased(ALWAYS_OFF))
    counting = Counting(server.provider)

    async def returned(request: bytes, context):
        server._note()
        for part in (b"a", b"b"):
            yield part

    handlers = grpc.method_handlers_generic_handler("test.Echo", {
        "Returned": grpc.unary_stream_rpc_method_handler(lambda r, c: returned(r, c))})
    grpc_server = grpc.aio.server(interceptors=[ServerInterceptor(), SampledServerInterceptor(
        counting, server.provider.sampler, server.provider.id_generator)])
    grpc_server.add_generic_rpc_handlers((handlers,))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/test.Echo/Returned")
            for sampled in (False, False, True):
                metadata = (("traceparent", _traceparent(sampled)),)
                assert [m async for m in call(b"ping", metadata=metadata)] == [b"a", b"b"]
    finally:
        await grpc_server.stop(0)
    assert counting.calls == 1  # the sampled call only
    assert server.recording == [False, False, True]
    assert [s.name for s in server.exporter.get_finished_spans()] == ["/test.Echo/Returned"]


async def test_health_which_our_interceptor_passes_through_answers_with_tracing_on():
    # The ServerInterceptor leaves health and reflection to grpc.aio as this one returns them:
    # a unary handler must stay a coroutine function there, or grpc.aio runs it as a
    # synchronous one and sends the coroutine.
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = Server(ParentBased(ALWAYS_OFF))
    grpc_server = grpc.aio.server(interceptors=[ServerInterceptor(), SampledServerInterceptor(
        aio_server_interceptor(tracer_provider=server.provider), server.provider.sampler,
        server.provider.id_generator)])
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for sampled in (False, True):
                metadata = (("traceparent", _traceparent(sampled)),)
                reply = await stub.Check(health_pb2.HealthCheckRequest(), metadata=metadata)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                watch = stub.Watch(health_pb2.HealthCheckRequest(), metadata=metadata)
                assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
                watch.cancel()
    finally:
        await grpc_server.stop(0)
