"""An HTTP client call's span, made only when the trace it is part of is recorded.

For the router's provider calls instead of the aiohttp instrumentation, which makes a span and
aiohttp its trace signals on every call (and every chunk a stream reads), sampled or not: that
and the gRPC server span were a third more instructions per request with sampling off (README,
"make bench-instructions"). A CLIENT span named after the method, with the HTTP semantic
conventions' attributes (https://opentelemetry.io/docs/specs/semconv/http/http-spans/), a child
of the current span, whose W3C `traceparent` goes into the request's headers. Not recorded, the
call pays one test and sends no trace header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.http import redact_url

from switchboard_common import tracing

_DEFAULT_PORTS = {"http": 80, "https": 443}


def start(method: str, url: str, headers: dict[str, str]) -> tuple[Span | None, dict[str, str]]:
    """The span of a call about to be sent and the headers to send it with (a copy carrying the
    trace context); (None, `headers` as given) when the current trace is not recorded."""
    if not tracing.enabled() or not tracing.current_span().is_recording():
        return None, headers
    parts = urlsplit(url)
    attributes: dict[str, str | int] = {"http.request.method": method, "url.full": redact_url(url)}
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if port:
        attributes["server.port"] = port
    span = tracing.tracer("switchboard_common.trace_http").start_span(
        method, kind=SpanKind.CLIENT, attributes=attributes)
    carried = dict(headers)
    propagate.inject(carried, context=trace.set_span_in_context(span))
    return span, carried


def finish(span: Span | None, status: int | None = None,
           error: BaseException | None = None) -> None:
    """Ends `span` (if any) with the response's status, or the exception that ended the call."""
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
    if error is not None:  # its type only: a message may quote what was sent
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
    span.end()
