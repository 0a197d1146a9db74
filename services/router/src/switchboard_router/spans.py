"""The GenAI span of each request, when tracing is on (switchboard_common.tracing).

Built once the request's usage is final, with the times it began and ended, so nothing is
allocated while it runs and tracing off costs one boolean test: a CLIENT span named
`{gen_ai.operation.name} {gen_ai.request.model}` with the GenAI semantic-convention attributes
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/), a child of the RPC's span, and
a child span per provider attempt (failovers and retries each their own, with the deployment and
the error that ended it), and a PRODUCER span for the usage event whose `traceparent` goes into
the event's NATS headers, so billing's consumer span links to it. Prompts and answers are never
attributes.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from switchboard_common import tracing

from switchboard_router.domain import Endpoint, Tokens

_OPERATION = {Endpoint.CHAT: "chat", Endpoint.COMPLETIONS: "text_completion",
              Endpoint.EMBEDDINGS: "embeddings", Endpoint.MODERATIONS: "moderations"}


def attempt(ex: Any, target: Any, began: float, error: str = "") -> None:
    """Notes one provider attempt of a request (a usage.Exchange) for its span; nothing when
    tracing is off."""
    if not tracing.enabled():
        return
    if ex.attempt_log is None:
        ex.attempt_log = []
    ex.attempt_log.append((target, began, time.perf_counter(), error))


def record(ex: Any, tokens: Tokens, subject: str) -> dict[str, str] | None:
    """The spans of one finished request (a usage.Exchange); returns the trace headers for its
    usage event, or None when tracing is off or the request's trace is sampled out."""
    # The RPC's trace sampled out, a child of it is not sampled either: asking the SDK would build
    # a non-recording span to say so. (The flag, not is_recording: an estimate's count may finish
    # after the RPC's span has ended.)
    if not tracing.enabled() or not tracing.current_span().get_span_context().trace_flags.sampled:
        return None
    tracer = tracing.tracer("switchboard_router")
    now_perf, now_ns = time.perf_counter(), time.time_ns()
    ended = ex.ended if ex.ended is not None else now_perf
    operation = _OPERATION[ex.endpoint]
    span = tracer.start_span(f"{operation} {ex.model}".strip(), kind=SpanKind.CLIENT,
                             start_time=now_ns - int((now_perf - ex.started) * 1e9))
    if not span.is_recording():  # sampled out after all: nothing of it is kept
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": ex.model,
        "gen_ai.usage.input_tokens": tokens.prompt,
        "gen_ai.usage.output_tokens": tokens.completion,
        "switchboard.request_id": ex.request_id,
        "switchboard.key_id": ex.key_id,
        "switchboard.stream": ex.stream,
        "http.response.status_code": ex.http_status,
    }
    if ex.target is not None:
        deployment = ex.target.deployment
        attributes["gen_ai.provider.name"] = deployment.provider
        attributes["gen_ai.response.model"] = ex.target.upstream_model
        attributes["switchboard.deployment"] = deployment.name
    if ex.error_type:
        attributes["error.type"] = ex.error_type
    span.set_attributes(attributes)
    if ex.outcome.name != "SUCCESS":
        span.set_status(Status(StatusCode.ERROR, ex.error_type or ex.outcome.name.lower()))
    span.end(end_time=now_ns - int((now_perf - ended) * 1e9))
    for number, (target, began, finished, error) in enumerate(ex.attempt_log or (), start=1):
        deployment = target.deployment
        child = tracer.start_span(
            f"attempt {deployment.name}", context=trace.set_span_in_context(span),
            kind=SpanKind.CLIENT, start_time=now_ns - int((now_perf - began) * 1e9), attributes={
                "gen_ai.provider.name": deployment.provider,
                "gen_ai.request.model": target.upstream_model,
                "switchboard.deployment": deployment.name, "switchboard.attempt": number,
                **({"error.type": error} if error else {})})
        if error:
            child.set_status(Status(StatusCode.ERROR, error))
        child.end(end_time=now_ns - int((now_perf - finished) * 1e9))
    publish = tracer.start_span(f"publish {subject}", context=trace.set_span_in_context(span),
                                kind=SpanKind.PRODUCER, attributes={
                                    "messaging.system": "nats",
                                    "messaging.destination.name": subject,
                                    "messaging.message.id": ex.event_id})
    headers = tracing.inject({}, trace.set_span_in_context(publish))
    publish.end()
    return headers
