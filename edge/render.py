"""Render Envoy's configuration for the Switchboard edge.

`python -m edge.render --out envoy.yaml` reads the addresses from the environment (see EdgeConfig);
the launcher and the container build both call `render()`. The routes come from the REST bindings
in the descriptor set (edge/routes.py); edge/README.md says what the edge does and why.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge import bindings, local_replies, routes

EDGE_DIR = Path(__file__).resolve().parent

# The router ends every model request by its own deadline (SWITCHBOARD_ROUTER_REQUEST_TIMEOUT_SECONDS,
# 300 s by default) with OpenAI's 504 or a stream's error event; the edge's timeout on its routes
# is only the backstop for a router that never answers, set above it so the router's answer comes
# first. Raise both together. The stream idle timeout catches a dead peer sooner.
MODEL_ROUTE_TIMEOUT = "330s"
# (route prefix, cluster, timeout): every public path is under one of these.
ROUTES = (
    ("/v1/", "router", MODEL_ROUTE_TIMEOUT),
    ("/chat/completions", "router", MODEL_ROUTE_TIMEOUT),
    ("/switchboard.gateway.v1.GatewayService/", "router", MODEL_ROUTE_TIMEOUT),  # native gRPC clients
    ("/api/routing", "router", "30s"),
    ("/api/credentials", "router", "30s"),
    ("/api/keys", "auth", "30s"),
    ("/api/tenants", "auth", "30s"),
    ("/api/billing/usage/export", "billing", "0s"),  # streamed, of any size: no route timeout
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
# Envoy's own admin API, read by health.lua; the one route to it is /metrics/envoy (its stats).
ADMIN_CLUSTER = "edge_admin"
# The admin dashboard (services/dashboard): plain HTTP/1.1, served under /ui/.
DASHBOARD_CLUSTER = "dashboard"
MAX_BODY_BYTES_CEILING = 63 * 1024 * 1024  # switchboard_common.grpc_server.MAX_MESSAGE_BYTES, less framing


@dataclass(frozen=True)
class EdgeConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    admin_port: int = 9901
    # Cluster name -> "host:port", or several separated by commas (one host per replica).
    upstreams: dict[str, str] = field(default_factory=lambda: {
        "router": "127.0.0.1:50051", "auth": "127.0.0.1:50052", "billing": "127.0.0.1:50053",
        "guardrails": "127.0.0.1:50054", "memory": "127.0.0.1:50055"})
    descriptor_path: Path = Path("proto/gen/switchboard.pb")
    max_body_bytes: int = 32 * 1024 * 1024  # OpenAI accepts requests of this size (images)
    # Above a service's largest message (switchboard_common.grpc_server.MAX_MESSAGE_BYTES), so a
    # unary answer the service may send is never cut here.
    max_response_body_bytes: int = 65 * 1024 * 1024
    # Below the services' gRPC metadata limit (grpc_server.MAX_METADATA_BYTES), with room for what
    # Envoy adds and HPACK's 32 bytes per header, so an oversize header is a 431 here, never a
    # RESOURCE_EXHAUSTED (429) from grpc-core.
    max_request_headers_kb: int = 32
    stream_idle_timeout: str = "300s"
    # A service that says NOT_SERVING (lame duck) is out of rotation after at most
    # health_detection_seconds; services keep accepting longer than that (shutdown_lame_duck_seconds).
    health_check_interval_seconds: float = 1.0
    health_check_timeout_seconds: float = 1.0
    unhealthy_threshold: int = 2
    # /healthz is 503 when one of these has no healthy host: a model call needs them.
    required_services: tuple[str, ...] = ("router", "auth")
    access_log: bool = False
    # Service name -> its Prometheus endpoint "host:port": served at /metrics/<service> (the
    # router's at /metrics as well) and Envoy's stats at /metrics/envoy. Empty: no such routes.
    metrics_upstreams: dict[str, str] = field(default_factory=dict)
    # The dashboard's "host:port" (several separated by commas): served at /ui/. Empty: no /ui/.
    dashboard_target: str = "127.0.0.1:8070"
    # An OTLP/gRPC collector "host:port": Envoy starts each request's trace (or continues the
    # client's `traceparent`) and sends it the edge's spans; the services continue the trace from
    # the `traceparent` it forwards. Empty: no spans here (a client's traceparent still passes).
    otlp_target: str = ""
    trace_sampling_percent: float = 100.0

    def __post_init__(self) -> None:
        if not 0 <= self.trace_sampling_percent <= 100:
            raise ValueError("SWITCHBOARD_EDGE_TRACE_SAMPLING_PERCENT must be between 0 and 100")
        if unknown := set(self.metrics_upstreams) - set(SERVICES):
            raise ValueError(f"metrics_upstreams names unknown services: {sorted(unknown)}")
        if self.max_body_bytes > MAX_BODY_BYTES_CEILING:
            raise ValueError(f"SWITCHBOARD_EDGE_MAX_BODY_BYTES={self.max_body_bytes} is above "
                             f"{MAX_BODY_BYTES_CEILING}: the services take gRPC messages up to 64 MiB")

    @property
    def health_detection_seconds(self) -> float:
        # A NOT_SERVING answer comes at once: unhealthy_threshold probes, one interval apart.
        return self.health_check_interval_seconds * self.unhealthy_threshold

    @classmethod
    def from_env(cls) -> EdgeConfig:
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
            dashboard_target=env.get("SWITCHBOARD_EDGE_DASHBOARD_TARGET", cls.dashboard_target),
            access_log=env.get("SWITCHBOARD_EDGE_ACCESS_LOG", "") in ("1", "true"),
            otlp_target=env.get("SWITCHBOARD_EDGE_OTLP_TARGET", ""),
            trace_sampling_percent=float(env.get("SWITCHBOARD_EDGE_TRACE_SAMPLING_PERCENT", "100")),
            metrics_upstreams={name: env[f"SWITCHBOARD_EDGE_{name.upper()}_METRICS_TARGET"]
                               for name in SERVICES
                               if env.get(f"SWITCHBOARD_EDGE_{name.upper()}_METRICS_TARGET")},
        )


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _endpoint(target: str) -> dict:
    host, port = target.strip().rsplit(":", 1)
    return {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}


def _cluster(name: str, targets: str, cfg: EdgeConfig) -> dict:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            _endpoint(t) for t in targets.split(",") if t.strip()]}]},
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
        "health_checks": [{"timeout": _seconds(cfg.health_check_timeout_seconds),
                           "interval": _seconds(cfg.health_check_interval_seconds),
                           "no_traffic_interval": _seconds(cfg.health_check_interval_seconds),
                           "unhealthy_threshold": cfg.unhealthy_threshold, "healthy_threshold": 1,
                           "grpc_health_check": {"service_name": SERVICES[name]}}],
    }


def _metrics_cluster(name: str, target: str) -> dict:
    # Plain HTTP/1.1 to prometheus-client's endpoint; one host (a replica) answers each scrape.
    return {"name": routes.metrics_cluster(name), "type": "STRICT_DNS", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": routes.metrics_cluster(name), "endpoints": [
                {"lb_endpoints": [_endpoint(t) for t in target.split(",") if t.strip()]}]}}


def _dashboard_cluster(cfg: EdgeConfig) -> dict:
    # Plain HTTP/1.1, health-checked on its own /ui/healthz like the gRPC services are.
    # RING_HASH on the route's affinity cookie: a browser stays with the replica holding its session.
    return {"name": DASHBOARD_CLUSTER, "type": "STRICT_DNS", "connect_timeout": "1s", "lb_policy": "RING_HASH",
            "load_assignment": {"cluster_name": DASHBOARD_CLUSTER, "endpoints": [{"lb_endpoints": [
                _endpoint(t) for t in cfg.dashboard_target.split(",") if t.strip()]}]},
            "health_checks": [{"timeout": _seconds(cfg.health_check_timeout_seconds),
                               "interval": _seconds(cfg.health_check_interval_seconds),
                               "no_traffic_interval": _seconds(cfg.health_check_interval_seconds),
                               "unhealthy_threshold": cfg.unhealthy_threshold, "healthy_threshold": 1,
                               "http_health_check": {"path": "/ui/healthz"}}]}


OTLP_CLUSTER = "otlp_collector"


def _otlp_cluster(cfg: EdgeConfig) -> dict:
    return {"name": OTLP_CLUSTER, "type": "STRICT_DNS", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": OTLP_CLUSTER, "endpoints": [{"lb_endpoints": [
                _endpoint(cfg.otlp_target)]}]},
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}}}


def _tracing(cfg: EdgeConfig) -> dict:
    """Envoy's OpenTelemetry tracer: W3C traceparent to the services, spans to the collector."""
    return {"random_sampling": {"value": cfg.trace_sampling_percent},
            "provider": {"name": "envoy.tracers.opentelemetry", "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                "service_name": "switchboard-edge"}}}


def _admin_cluster(cfg: EdgeConfig) -> dict:
    return {"name": ADMIN_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": ADMIN_CLUSTER, "endpoints": [{"lb_endpoints": [
                _endpoint(f"127.0.0.1:{cfg.admin_port}")]}]}}


def _route_table(cfg: EdgeConfig) -> list[dict]:
    policies = [routes.Policy(*entry) for entry in ROUTES]
    found = bindings.load(cfg.descriptor_path, set(SERVICES.values()))
    clusters = {service: cluster for cluster, service in SERVICES.items()}
    return [*routes.guards(cfg.max_body_bytes), *routes.own_paths(_health_lua(cfg)),
            *routes.metrics_paths(cfg.metrics_upstreams, ADMIN_CLUSTER),
            *(routes.dashboard(DASHBOARD_CLUSTER) if cfg.dashboard_target else []),
            *routes.native_grpc(policies), *routes.grpc_on_rest_paths(policies),
            # The admin API takes no query parameter it does not define: a typo is a 400, not ignored.
            *routes.rest(found, policies, clusters, admin_transcoder=_transcoder(cfg, strict_query=True)),
            routes.unknown_path(found, dashboard=bool(cfg.dashboard_target))]


def _health_lua(cfg: EdgeConfig) -> str:
    stats = r"^(server\.live|cluster\.[a-z_]+\.membership_(healthy|degraded|total))$"
    settings = "\n".join([
        f'ADMIN_CLUSTER = "{ADMIN_CLUSTER}"',
        f'STATS_PATH = "/stats?filter={urllib.parse.quote(stats, safe="")}"',
        "SERVICES = {" + ", ".join(f'"{name}"' for name in SERVICES) + "}",
        "REQUIRED = {" + ", ".join(f"{name} = true" for name in cfg.required_services) + "}",
    ])
    return settings + "\n" + (EDGE_DIR / "health.lua").read_text()


def _errors_filter() -> dict:
    """errors.lua, instantiated only for a response whose grpc-status is set and not 0: success
    responses never pay for Lua."""
    lua = {"name": "errors.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"filename": str(EDGE_DIR / "errors.lua")}}}
    failed = {"single_predicate": {
        "input": {"name": "grpc-status", "typed_config": {
            "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpResponseHeaderMatchInput",
            "header_name": "grpc-status"}},
        "value_match": {"safe_regex": {"google_re2": {}, "regex": "[1-9][0-9]*"}}}}
    return {"name": routes.ERRORS, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
        "extension_config": {"name": "composite", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"}},
        "xds_matcher": {"matcher_list": {"matchers": [{"predicate": failed, "on_match": {"action": {
            "name": "shape-error", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
                "typed_config": lua}}}}]}}}}


def _strip_filter() -> dict:
    """What a successful gRPC answer leaves in a REST response: grpc-accept-encoding always,
    grpc-status and grpc-message in the headers of a unary answer (the transcoder merges its
    trailers) or in HTTP/2 trailers after a stream. errors.lua removes the rest on errors. Each
    removal costs on every response, so the list is only what appears."""
    return {"name": routes.STRIP, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        "mutations": {
            "response_mutations": [{"remove": h} for h in ("grpc-accept-encoding", "grpc-status", "grpc-message")],
            "response_trailers_mutations": [{"remove": h} for h in ("grpc-status", "grpc-message")]}}}


def _transcoder(cfg: EdgeConfig, *, strict_query: bool = False) -> dict:
    # OpenAI clients may add query parameters (Azure's api-version), so the edge ignores unknown
    # ones by default; the admin routes override that with strict_query.
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        "proto_descriptor": str(cfg.descriptor_path.resolve()),
        "services": list(SERVICES.values()),
        "match_incoming_request_route": True,
        "print_options": {"preserve_proto_field_names": True, "always_print_primitive_fields": True,
                          "always_print_enums_as_ints": False},
        # `openai%2Fgpt-4o-mini` (how the SDK sends a model id with a slash) is openai/gpt-4o-mini.
        "url_unescape_spec": "ALL_CHARACTERS",
        "ignore_unknown_query_parameters": not strict_query,
        "request_validation_options": {"reject_unknown_method": True,
                                       "reject_unknown_query_parameters": strict_query},
        "max_request_body_size": cfg.max_body_bytes,
        "max_response_body_size": cfg.max_response_body_bytes}


def _http_filters(cfg: EdgeConfig) -> list[dict]:
    # On the response path filters run in reverse: the transcoder, then errors, then strip.
    return [
        _strip_filter(),
        _errors_filter(),
        {"name": routes.HEALTH, "disabled": True, "typed_config": {  # enabled on /healthz only
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}},
        {"name": routes.TRANSCODER, "typed_config": _transcoder(cfg)},
        {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "suppress_envoy_headers": True}},
    ]


def build(cfg: EdgeConfig) -> dict:
    hcm = {
        "@type": ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                  ".HttpConnectionManager"),
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
        "max_request_headers_kb": cfg.max_request_headers_kb,
        "common_http_protocol_options": {"max_headers_count": 100},
        "route_config": {"name": "switchboard", "virtual_hosts": [
            {"name": "switchboard", "domains": ["*"], "routes": _route_table(cfg)}]},
        "http_filters": _http_filters(cfg),
        "local_reply_config": {"mappers": local_replies.mappers()},
    }
    if cfg.otlp_target:
        hcm["tracing"] = _tracing(cfg)
    if cfg.access_log:
        hcm["access_log"] = [{"name": "envoy.access_loggers.stdout", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": cfg.admin_port}}},
        # The path-variable regexes spell out UTF-8 (edge/bindings.py): above RE2's default 100.
        "layered_runtime": {"layers": [
            {"name": "static", "static_layer": {"re2.max_program_size.error_level": 1000}},
            {"name": "admin", "admin_layer": {}}]},
        "static_resources": {
            "listeners": [{"name": "edge", "address": {"socket_address": {
                "address": cfg.listen_host, "port_value": cfg.listen_port}},
                "per_connection_buffer_limit_bytes": 1048576,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}],
            "clusters": [*(_cluster(name, targets, cfg) for name, targets in cfg.upstreams.items()),
                         *(_metrics_cluster(name, target)
                           for name, target in cfg.metrics_upstreams.items()),
                         *([_otlp_cluster(cfg)] if cfg.otlp_target else []),
                         *([_dashboard_cluster(cfg)] if cfg.dashboard_target else []),
                         _admin_cluster(cfg)],
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
