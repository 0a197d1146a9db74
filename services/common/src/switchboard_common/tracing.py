"""OpenTelemetry traces, off by default (OTEL_TRACES_EXPORTER=otlp or console turns them on).

Off, nothing is installed: no interceptor, no patched aiohttp, no span built on any request, so
the hot path pays one boolean test where a span would start. On, each service is a TracerProvider
named `switchboard-<service>` with a batch processor (export off the request's path), the gRPC
instrumentation's interceptors on its server (for the calls that will be sampled only:
trace_sampling.py) and on every channel it opens (W3C `traceparent` in the gRPC metadata, so one
trace runs edge -> router -> auth, guardrails, memory), and the aiohttp client instrumentation on
its HTTP sessions but the router's provider session, whose calls make their own span when
sampled (trace_http.py). The OTLP exporter reads the standard OTEL_EXPORTER_OTLP_*
variables and the SDK its sampler (OTEL_TRACES_SAMPLER); see settings.TelemetrySettings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import structlog
from opentelemetry import propagate, trace
from opentelemetry.context import Context, get_current
from opentelemetry.trace.propagation import _SPAN_KEY

from switchboard_common.settings import TelemetrySettings

_log = structlog.get_logger("tracing")
_enabled = False
_provider: Any = None


def enabled() -> bool:
    return _enabled


def configure(service: str, settings: TelemetrySettings) -> None:
    """Install the SDK for `service` when the settings ask for traces; else leave the API's no-op."""
    global _enabled, _provider
    if not settings.tracing:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if settings.traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    from switchboard_common.trace_sampling import DecidedIds

    _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"switchboard-{service}"}),
                               id_generator=DecidedIds())
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=_provider)
    _enabled = True
    _log.info("tracing on", exporter=settings.traces_exporter)


def server_interceptors() -> list[Any]:
    """The gRPC instrumentation's server interceptor (one SERVER span per sampled RPC), when on."""
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    from switchboard_common.trace_sampling import SampledServerInterceptor

    return [SampledServerInterceptor(aio_server_interceptor(tracer_provider=_provider),
                                     _provider.sampler, _provider.id_generator)]


def without_http_instrumentation(session: Any) -> None:
    """Takes the aiohttp instrumentation off `session` (an aiohttp.ClientSession), whose calls
    make their own span with trace_http instead: the instrumentation builds one, and aiohttp its
    trace signals, on every call and every chunk read, sampled or not."""
    if _enabled:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        AioHttpClientInstrumentor.uninstrument_session(session)


def client_interceptors() -> list[Any]:
    """Interceptors for a channel to a neighbour: a CLIENT span and `traceparent`, when on."""
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=_provider))


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject(carrier: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """The trace context (the current one by default) written into `carrier`, e.g. NATS
    headers; returns it."""
    if _enabled:
        propagate.inject(carrier, context=context)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> Context | None:
    """The trace context a producer wrote into `carrier`, or None."""
    if not _enabled or not carrier:
        return None
    return propagate.extract(dict(carrier))


def link_to(carrier: Mapping[str, str] | None) -> Sequence[trace.Link]:
    """A link to the span whose context `carrier` holds (a consumer's span is not its child)."""
    ctx = extract(carrier)
    if ctx is None:
        return ()
    span_context = trace.get_current_span(ctx).get_span_context()
    return (trace.Link(span_context),) if span_context.is_valid else ()


def current_span() -> trace.Span:
    """trace.get_current_span(), read where the API keeps it: the API's own checks the span
    against the Span ABC (~5 Python calls, and each request asks 3 times, sampled or not)."""
    span = get_current().get(_SPAN_KEY)
    return cast(trace.Span, span) if span is not None else trace.INVALID_SPAN


def current_trace_id() -> str:
    """The current span's trace id in hex (for log lines), or ""."""
    if not _enabled:
        return ""
    context = current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def shutdown() -> None:
    """Export what is buffered (at the end of a service's shutdown)."""
    if _provider is not None:
        _provider.shutdown()
