"""The edge's timeouts on the model routes sit above the router's own request deadline, so a client
hears the router's OpenAI-shaped 504 (or a stream's error event), never Envoy cutting it first."""

from __future__ import annotations

from edge.render import MODEL_ROUTE_TIMEOUT, EdgeConfig, build
from switchboard_router.settings import RouterSettings


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def _where(match: dict) -> str:
    return match.get("path") or match.get("prefix") or match["safe_regex"]["regex"]


def test_router_routes_time_out_after_the_routers_own_deadline():
    router_deadline = RouterSettings.model_fields["request_timeout_seconds"].default
    config = build(EdgeConfig())
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {_where(r["match"]): r["route"]["timeout"]
              for r in hcm["route_config"]["virtual_hosts"][0]["routes"]
              if r.get("route", {}).get("cluster") == "router"
              and not _where(r["match"]).startswith("/api/")}
    # The model routes, REST and native gRPC, are all there.
    assert {"/v1/chat/completions", "/chat/completions", "/v1/embeddings",
            "/switchboard.gateway.v1.GatewayService/"} <= set(routes)
    for where, timeout in routes.items():
        assert _seconds(timeout) == _seconds(MODEL_ROUTE_TIMEOUT), where
    # Above the router's deadline by more than its drain of a request (a few seconds).
    assert _seconds(MODEL_ROUTE_TIMEOUT) >= router_deadline + 10
