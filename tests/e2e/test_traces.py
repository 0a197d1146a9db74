"""Traces: with tracing on (OTEL_TRACES_EXPORTER=otlp, and the edge's tracer), one chat request is
one connected trace across the edge, the router, auth and the provider call, with the GenAI
attributes, received by an OTLP/gRPC collector the test runs (opentelemetry-proto's service)."""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.conftest import PROVIDER_KEY, _start_stack
from tests.e2e.test_http_edge import post
from tests.e2e.test_usage_billing import create_key


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent as (service name, span)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []
        self._lock = threading.Lock()

    def Export(self, request, context):
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next((a.value.string_value for a in resource_spans.resource.attributes
                                if a.key == "service.name"), "")
                for scope in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def snapshot(self) -> list[tuple[str, object]]:
        with self._lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def traced(tmp_path_factory, fake_openai):
    collector = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stack = _start_stack(tmp_path_factory.mktemp("stack-traced"), fake_openai, {
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_BSP_SCHEDULE_DELAY": "100",
        "SWITCHBOARD_EDGE_OTLP_TARGET": f"127.0.0.1:{port}"})
    yield stack, collector
    stack.stop()
    server.stop(0)


def _attributes(span) -> dict:
    out = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = value.string_value or value.int_value or value.bool_value
    return out


def test_one_request_is_one_trace_across_the_services(traced):
    stack, collector = traced
    _, secret = create_key(stack)
    resp = post(stack, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "trace me"}]},
                key=secret)
    assert resp.status_code == 200, resp.text
    request_id = resp.headers["x-request-id"]

    def genai_span():
        return next((s for _, s in collector.snapshot() if s.name == "chat gpt-4o-mini"
                     and _attributes(s).get("switchboard.request_id") == request_id), None)

    deadline = time.monotonic() + 30  # spans leave each process in batches
    while genai_span() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    genai = genai_span()
    assert genai is not None, sorted({(svc, s.name) for svc, s in collector.snapshot()})
    trace_id = genai.trace_id

    def services_in_trace() -> set[str]:
        return {svc for svc, s in collector.snapshot() if s.trace_id == trace_id}

    wanted = {"switchboard-edge", "switchboard-router", "switchboard-auth", "switchboard-billing"}
    while not wanted <= services_in_trace() and time.monotonic() < deadline:
        time.sleep(0.2)
    in_trace = [(svc, s) for svc, s in collector.snapshot() if s.trace_id == trace_id]
    names = {(svc, s.name) for svc, s in in_trace}
    assert wanted - {"switchboard-billing"} <= {svc for svc, _ in in_trace}, names
    # The router's RPC span, auth's Authorize span, the provider's HTTP call and the event publish.
    assert ("switchboard-router", "/switchboard.gateway.v1.GatewayService/ChatCompletions") in names \
        or any(svc == "switchboard-router" and "GatewayService" in n for svc, n in names), names
    assert any(svc == "switchboard-auth" and "Authorize" in n for svc, n in names), names
    assert any(svc == "switchboard-router" and n.startswith("POST") for svc, n in names), names
    assert ("switchboard-router", "publish usage.recorded") in names
    # Every span but the edge's root has its parent in the same trace: one connected tree.
    ids = {s.span_id for _, s in in_trace}
    roots = [(svc, s.name) for svc, s in in_trace if not s.parent_span_id or s.parent_span_id not in ids]
    assert [svc for svc, _ in roots] == ["switchboard-edge"], roots

    attributes = _attributes(genai)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    usage = resp.json()["usage"]
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    # Billing's consumer span is linked to the usage event's publish (not a child of it).
    publish = next(s for svc, s in in_trace if s.name == "publish usage.recorded")
    while time.monotonic() < deadline and not any(
            link.span_id == publish.span_id for _, s in collector.snapshot() for link in s.links):
        time.sleep(0.2)
    assert any(svc == "switchboard-billing" and link.span_id == publish.span_id
               for svc, s in collector.snapshot() for link in s.links)
    # No prompt text and no secret in any span.
    text = b"".join(s.SerializeToString() for _, s in collector.snapshot())
    assert b"trace me" not in text and secret.encode() not in text
    assert PROVIDER_KEY.encode() not in text


def test_each_provider_attempt_is_its_own_span_under_the_request(traced):
    stack, collector = traced
    _, secret = create_key(stack)
    ok = post(stack, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one try"}]},
              key=secret)
    failed = post(stack, {"model": "gpt-4o-mini",
                          "messages": [{"role": "user", "content": "fail [fake:error-500]"}]}, key=secret)
    assert ok.status_code == 200 and failed.status_code == 502, failed.text

    def spans_of(request_id: str) -> tuple[object | None, list]:
        snapshot = [s for _, s in collector.snapshot()]
        genai = next((s for s in snapshot if s.name == "chat gpt-4o-mini"
                      and _attributes(s).get("switchboard.request_id") == request_id), None)
        if genai is None:
            return None, []
        return genai, sorted((s for s in snapshot if s.parent_span_id == genai.span_id
                              and s.name.startswith("attempt ")),
                             key=lambda s: _attributes(s)["switchboard.attempt"])

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            spans_of(ok.headers["x-request-id"])[1] and spans_of(failed.headers["x-request-id"])[1]):
        time.sleep(0.2)
    _, (only,) = spans_of(ok.headers["x-request-id"])
    attributes = _attributes(only)
    assert attributes["gen_ai.provider.name"] == "openai" and "error.type" not in attributes
    assert attributes["switchboard.attempt"] == 1
    genai, attempts = spans_of(failed.headers["x-request-id"])
    # Every attempt (a failover's, a retry's) is a span, each here ended by the fake's 500.
    assert attempts, "no attempt span under the failed request"
    assert [_attributes(s)["switchboard.attempt"] for s in attempts] == list(range(1, len(attempts) + 1))
    assert {_attributes(s)["error.type"] for s in attempts} == {"upstream_error"}
    assert all(genai.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano
               <= genai.end_time_unix_nano for s in attempts)
