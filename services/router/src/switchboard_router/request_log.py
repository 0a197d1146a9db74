"""The router's one line per model request, once its usage is final: who (key and tenant ids,
never the key), what (endpoint, model, the deployment that served it), how it ended (status,
outcome, error type), tokens, cost and latency, with the request id and the trace id (when
tracing is on) to find the rest. Prompts and answers are never in it."""

from __future__ import annotations

from typing import Any

import structlog
from switchboard_common import tracing

from switchboard_router.domain import Tokens
from switchboard_router.prices import usd

_log = structlog.get_logger("request")
_MODEL_CHARS = 200  # a client's model name is any string: the line stays bounded


def line(ex: Any, tokens: Tokens, cost_micros: int | None) -> None:
    """Log one finished request (a usage.Exchange)."""
    target = ex.target
    ended = ex.ended if ex.ended is not None else ex.started
    _log.info(
        "request", request_id=ex.request_id, trace_id=tracing.current_trace_id() or None,
        event_id=ex.event_id, key_id=ex.key_id or None, tenant_id=ex.tenant_id or None,
        endpoint=ex.endpoint.value, model=ex.model[:_MODEL_CHARS], stream=ex.stream,
        provider=target.deployment.provider if target else None,
        deployment=target.deployment.name if target else None,
        status=ex.http_status, outcome=ex.outcome.name.lower(), error_type=ex.error_type or None,
        prompt_tokens=tokens.prompt, completion_tokens=tokens.completion,
        cost_usd=usd(cost_micros) if cost_micros is not None else None,
        latency_ms=round((ended - ex.started) * 1000, 3),
        ttfb_ms=round((ex.first_byte - ex.started) * 1000, 3) if ex.first_byte else None)
