"""An HTTP call's span (trace_http.py): made, and its traceparent sent, only when the current trace
is recorded; the HTTP semantic conventions' attributes; an error answer or exception marks it."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from switchboard_common import trace_http, tracing

URL = "https://api.example.com/v1/chat/completions?api-version=2024-10-21"


@pytest.fixture
def exporter(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_enabled", True)
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer)
    exporter.tracer = provider.get_tracer("test")
    return exporter


def test_a_recorded_trace_gets_the_calls_span_and_sends_its_traceparent(exporter):
    headers = {"authorization": "Bearer sk-secret"}
    with exporter.tracer.start_as_current_span("rpc") as parent:
        span, sent = trace_http.start("POST", URL, headers)
        trace_http.finish(span, 200)
    assert headers == {"authorization": "Bearer sk-secret"}  # the caller's dict is left alone
    (call,) = [s for s in exporter.get_finished_spans() if s.name == "POST"]
    assert call.kind == trace.SpanKind.CLIENT
    assert call.parent.span_id == parent.get_span_context().span_id
    flags = call.context.trace_flags
    assert flags.sampled
    assert sent["traceparent"] == f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}-{flags:02x}"
    assert sent["authorization"] == "Bearer sk-secret"
    assert dict(call.attributes) == {
        "http.request.method": "POST", "url.full": URL, "server.address": "api.example.com",
        "server.port": 443, "http.response.status_code": 200}
    assert call.status.status_code == StatusCode.UNSET
    assert b"sk-secret" not in call.to_json().encode()


def test_an_error_answer_or_exception_marks_the_span(exporter):
    with exporter.tracer.start_as_current_span("rpc"):
        answered, _ = trace_http.start("POST", "http://127.0.0.1:8080/v1/embeddings", {})
        trace_http.finish(answered, 503)
        failed, _ = trace_http.start("POST", "http://127.0.0.1:8080/v1/embeddings", {})
        trace_http.finish(failed, error=TimeoutError("no answer from 127.0.0.1"))
    spans = {s.attributes.get("http.response.status_code"): s
             for s in exporter.get_finished_spans() if s.name == "POST"}
    assert spans[503].attributes["error.type"] == "503"
    assert spans[503].status.status_code == StatusCode.ERROR
    assert spans[503].attributes["server.port"] == 8080
    assert spans[None].attributes["error.type"] == "TimeoutError"
    assert spans[None].status.status_code == StatusCode.ERROR


def test_a_trace_not_recorded_gets_no_span_and_no_header(exporter):
    headers = {"authorization": "Bearer k"}
    unsampled = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)))
    with trace.use_span(unsampled):
        span, sent = trace_http.start("POST", URL, headers)
    assert span is None and sent is headers and "traceparent" not in sent
    trace_http.finish(span, 200)  # nothing to end
    assert exporter.get_finished_spans() == ()


def test_tracing_off_gets_no_span(exporter, monkeypatch):
    monkeypatch.setattr(tracing, "_enabled", False)
    with exporter.tracer.start_as_current_span("rpc"):
        span, sent = trace_http.start("POST", URL, {})
    assert span is None and sent == {}
    assert [s.name for s in exporter.get_finished_spans()] == ["rpc"]
