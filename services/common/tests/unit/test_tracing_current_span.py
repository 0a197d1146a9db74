"""tracing.current_span reads the span where the API keeps it: the same answer as the API's."""

from __future__ import annotations

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from switchboard_common import tracing


def test_current_span_is_the_apis_current_span_with_and_without_one():
    assert tracing.current_span() is trace.get_current_span() is trace.INVALID_SPAN
    span = NonRecordingSpan(SpanContext(0x1F, 0x2F, is_remote=False,
                                        trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    token = context.attach(trace.set_span_in_context(span))
    try:
        assert tracing.current_span() is trace.get_current_span() is span
    finally:
        context.detach(token)
    assert tracing.current_span() is trace.INVALID_SPAN
