"""Render Envoy's configuration for the Switchboard edge.

`python -m edge.render --out envoy.yaml` reads the addresses from the environment (see EdgeConfig);
the launcher and the container build both call `render()`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EDGE_DIR = Path(__file__).resolve().parent

# (route prefix, cluster, timeout): the OpenAI routes stream, so they have no route timeout; the
# router's per-deployment timeouts apply instead, and the stream idle timeout catches a dead peer.
ROUTES = (
    ("/v1/", "router", "0s"),
    ("/chat/completions", "router", "0s"),
    ("/switchboard.gateway.v1.GatewayService/", "router", "0s"),  # native gRPC clients
    ("/api/routing", "router", "30s"),
    ("/api/keys", "auth", "30s"),
    ("/api/tenants", "auth", "30s"),
    ("/api/billing", "billing", "30s"),
    ("/api/guardrails", "guardrails", "30s"),
    ("/api/memory", "memory", "30s"),
)
SERVICES = {
    "router": "switchboard.gateway.v1.GatewayService",
    "auth": "switchboard.auth.v1.AuthService",
    "billing": "switchboard.billing.v1.BillingService",
    "guardrails": "switchboard.guardrails.v1.GuardrailsService",
    "memory": "switchboard.memory.v1.MemoryService",
}
# Envoy's own replies (bad paths, oversize bodies, dead upstreams) in OpenAI's error shape.
LOCAL_REPLY_TYPES = (
    (404, "invalid_request_error", "not_found"),
    (413, "invalid_request_error", "request_too_large"),
    (400, "invalid_request_error", None),
    (503, "service_unavailable", "service_unavailable"),
    (504, "timeout", "timeout"),
)


@dataclass(frozen=True)
class EdgeConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    admin_port: int = 9901
    upstreams: dict[str, str] = field(default_factory=lambda: {
        "router": "127.0.0.1:50051", "auth": "127.0.0.1:50052", "billing": "127.0.0.1:50053",
        "guardrails": "127.0.0.1:50054", "memory": "127.0.0.1:50055"})
    descriptor_path: Path = Path("proto/gen/switchboard.pb")
    max_body_bytes: int = 32 * 1024 * 1024  # OpenAI accepts requests of this size (images)
    stream_idle_timeout: str = "300s"
    access_log: bool = False

    @classmethod
    def from_env(cls) -> "EdgeConfig":
        env = os.environ
        upstreams = {name: env.get(f"SWITCHBOARD_EDGE_{name.upper()}_TARGET", default)
                     for name, default in cls().upstreams.items()}
        return cls(
            listen_host=env.get("SWITCHBOARD_EDGE_HOST", "127.0.0.1"),
            listen_port=int(env.get("SWITCHBOARD_EDGE_PORT", "8080")),
            admin_port=int(env.get("SWITCHBOARD_EDGE_ADMIN_PORT", "9901")),
            upstreams=upstreams,
            descriptor_path=Path(env.get("SWITCHBOARD_EDGE_DESCRIPTOR", "proto/gen/switchboard.pb")),
            max_body_bytes=int(env.get("SWITCHBOARD_EDGE_MAX_BODY_BYTES", str(32 * 1024 * 1024))),
            access_log=env.get("SWITCHBOARD_EDGE_ACCESS_LOG", "") in ("1", "true"),
        )


def _cluster(name: str, target: str) -> dict:
    host, port = target.rsplit(":", 1)
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {
                    "max_concurrent_streams": 10000,
                    "initial_stream_window_size": 1048576,
                    "initial_connection_window_size": 4194304}}}},
        "circuit_breakers": {"thresholds": [{"max_connections": 10000, "max_pending_requests": 10000,
                                             "max_requests": 10000, "max_retries": 3}]},
        # Without no_traffic_interval an idle cluster is probed only once a minute.
        "health_checks": [{"timeout": "1s", "interval": "2s", "no_traffic_interval": "2s",
                           "unhealthy_threshold": 2, "healthy_threshold": 1,
                           "grpc_health_check": {"service_name": SERVICES[name]}}],
    }


# Routes Envoy answers itself: the transcoder must not see them, or it rejects them as unknown methods.
_NO_TRANSCODING = {"typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}}


def _routes() -> list[dict]:
    routes: list[dict] = [
        {"match": {"path": "/livez"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
         **_NO_TRANSCODING},
    ]
    for prefix, cluster, timeout in ROUTES:
        routes.append({"match": {"prefix": prefix},
                       "route": {"cluster": cluster, "timeout": timeout, "idle_timeout": "0s"}})
    routes.append({"match": {"prefix": "/"}, "direct_response": {
        "status": 404, "body": {"inline_string": "Unknown path. The OpenAI API is under /v1/."}},
        **_NO_TRANSCODING})
    return routes


def _local_reply_mappers() -> list[dict]:
    mappers = []
    for status, error_type, code in LOCAL_REPLY_TYPES:
        mappers.append({
            "filter": {"status_code_filter": {"comparison": {
                "op": "EQ", "value": {"default_value": status, "runtime_key": f"edge.lr_{status}"}}}},
            "body_format_override": {"json_format": {"error": {
                "message": "%LOCAL_REPLY_BODY%", "type": error_type, "param": None, "code": code}},
                "content_type": "application/json"}})
    # Anything else Envoy itself answers with >= 400.
    mappers.append({
        "filter": {"status_code_filter": {"comparison": {
            "op": "GE", "value": {"default_value": 400, "runtime_key": "edge.lr_any"}}}},
        "body_format_override": {"json_format": {"error": {
            "message": "%LOCAL_REPLY_BODY%", "type": "server_error", "param": None, "code": None}},
            "content_type": "application/json"}})
    return mappers


def _http_filters(cfg: EdgeConfig) -> list[dict]:
    all_healthy = {name: {"value": 100.0} for name in SERVICES}
    return [
        # /healthz is ready only while every service passes its gRPC health check.
        {"name": "envoy.filters.http.health_check", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
            "pass_through_mode": False,
            "headers": [{"name": ":path", "string_match": {"exact": "/healthz"}}],
            "cluster_min_healthy_percentages": all_healthy}},
        {"name": "envoy.filters.http.lua", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"filename": str(EDGE_DIR / "errors.lua")}}},
        {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(cfg.descriptor_path.resolve()),
            "services": list(SERVICES.values()),
            "match_incoming_request_route": True,
            "print_options": {"preserve_proto_field_names": True, "always_print_primitive_fields": True,
                              "always_print_enums_as_ints": False},
            "ignore_unknown_query_parameters": True,
            "request_validation_options": {"reject_unknown_method": True},
            "max_request_body_size": cfg.max_body_bytes,
            "max_response_body_size": 64 * 1024 * 1024}},
        {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "suppress_envoy_headers": True}},
    ]


def build(cfg: EdgeConfig) -> dict:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "edge",
        "codec_type": "AUTO",  # HTTP/1.1 for REST clients, h2c for native gRPC clients
        # The edge always makes the request id (never trusts the client's), so billing's
        # idempotency by request id cannot be abused by replaying an id.
        "use_remote_address": True,
        "generate_request_id": True,
        "preserve_external_request_id": False,
        "always_set_request_id_in_response": True,
        "stream_idle_timeout": cfg.stream_idle_timeout,
        "request_timeout": "0s",
        "route_config": {"name": "switchboard", "virtual_hosts": [
            {"name": "switchboard", "domains": ["*"], "routes": _routes()}]},
        "http_filters": _http_filters(cfg),
        "local_reply_config": {"mappers": _local_reply_mappers()},
    }
    if cfg.access_log:
        hcm["access_log"] = [{"name": "envoy.access_loggers.stdout", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": cfg.admin_port}}},
        "static_resources": {
            "listeners": [{"name": "edge", "address": {"socket_address": {
                "address": cfg.listen_host, "port_value": cfg.listen_port}},
                "per_connection_buffer_limit_bytes": 1048576,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}],
            "clusters": [_cluster(name, target) for name, target in cfg.upstreams.items()],
        },
    }


def render(cfg: EdgeConfig) -> str:
    return yaml.safe_dump(build(cfg), sort_keys=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(render(EdgeConfig.from_env()))


if __name__ == "__main__":
    main()
