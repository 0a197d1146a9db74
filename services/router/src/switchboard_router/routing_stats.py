"""GET /api/routing/stats: totals and each deployment's traffic, latency, last error and breaker,
built once from the stats and written both as the typed message and as JSON with numbers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchboard.gateway.v1 import gateway_pb2

from switchboard_router.keyring import KeyRing
from switchboard_router.routing import Routes


def collect(routes: Routes, model: str = "", keyrings: Iterable[KeyRing] = ()) -> dict[str, Any]:
    """The stats as plain data: JSON numbers for every count (proto3 JSON would print int64 as
    strings), every field present; with the health of each key of the providers that have
    several (by hint only)."""
    deployments = []
    requests = successes = errors = 0
    for d in routes.deployments(model):
        s = d.stats.snapshot()
        requests, successes, errors = requests + s.requests, successes + s.successes, errors + s.errors
        deployments.append({
            "model": d.route, "deployment": d.name, "provider": d.provider,
            "strategy": routes.strategy_of(d.route), "healthy": s.healthy,
            "circuit_state": s.circuit_state, "requests": s.requests, "successes": s.successes,
            "errors": s.errors, "success_rate": s.success_rate, "in_flight": s.in_flight,
            "latency_p50_ms": s.latency_p50_ms, "latency_p95_ms": s.latency_p95_ms,
            "latency_ewma_ms": s.latency_ewma_ms, "ttft_p50_ms": s.ttft_p50_ms,
            "ttft_p95_ms": s.ttft_p95_ms, "ttft_ewma_ms": s.ttft_ewma_ms,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at.isoformat().replace("+00:00", "Z")
            if s.last_error_at else None})
    done = successes + errors
    provider_keys = [{"provider": k.provider, "hint": k.hint, "state": k.state,
                      "ready_in_seconds": k.ready_in_seconds, "weight": k.weight, "rpm": k.rpm,
                      "requests": k.requests, "rate_limited_responses": k.throttled,
                      "rejected_responses": k.rejected}
                     for ring in keyrings for k in ring.health()]
    return {"strategy": routes.strategy, "total_requests": requests,
            "success_rate": successes / done if done else 1.0, "deployments": deployments,
            "provider_keys": provider_keys}


def message(stats: dict[str, Any]) -> gateway_pb2.GetRoutingStatsResponse:
    out = gateway_pb2.GetRoutingStatsResponse(strategy=stats["strategy"],
                                              total_requests=stats["total_requests"],
                                              success_rate=stats["success_rate"])
    for d in stats["deployments"]:
        fields = {k: v for k, v in d.items() if k != "last_error_at"}
        row = out.deployments.add(**fields)
        if d["last_error_at"] is not None:
            row.last_error_at.FromJsonString(d["last_error_at"])
    for k in stats["provider_keys"]:
        out.provider_keys.add(**k)
    return out
