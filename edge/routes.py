"""The edge's route table, built from the REST bindings: each bound (method, path) goes to the
service that serves it, a known path with a wrong method is 405, anything else 404.

Order matters (Envoy takes the first route that matches): cheap guards that refuse a request
before any service sees it, then Envoy's own paths, native gRPC, the REST bindings (the OpenAI
ones first: they are the hot path), the 405s and the 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.bindings import Binding

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
ERRORS = "switchboard.errors"  # shapes gRPC errors into OpenAI's body (Lua, error responses only)
STRIP = "switchboard.strip_internal_headers"  # the grpc-* headers a success leaves, off REST answers
HEALTH = "switchboard.health"  # answers /healthz (Lua, on that route only)

# Where the services read a key (switchboard_common.credentials.KEY_HEADERS plus authorization).
KEY_HEADERS = ("authorization", "x-api-key", "api-key")
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Policy:
    """What the edge does with every path under one prefix (`edge.render.ROUTES`)."""

    prefix: str
    cluster: str
    timeout: str

    @property
    def is_grpc(self) -> bool:
        return self.prefix.startswith("/switchboard.")  # /<package>.<Service>/<Method>


def _per_filter(disabled: Iterable[str]) -> dict:
    return {"typed_per_filter_config": {
        name: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
        for name in disabled}}


# Envoy answers these itself: the transcoder must not see them, or it rejects them as unknown
# methods; the errors filter stays on so a local reply made gRPC-shaped still reaches a REST client
# as JSON.
_LOCAL = _per_filter(disabled=[TRANSCODER])
_GRPC_CONTENT = {"name": "content-type", "string_match": {"prefix": "application/grpc"}}


def _retry_policy() -> dict:
    # What failed before any response byte: a refused connection, a stream refused by a server
    # that is going away, a reset. Once, on another host. A reset may come after the service began
    # (a router killed mid-request), so that request may reach the provider twice.
    return {
        "retry_on": "connect-failure,refused-stream,reset",
        "num_retries": 1,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": 3,
    }


def _to_service(policy: Policy) -> dict:
    return {"cluster": policy.cluster, "timeout": policy.timeout, "idle_timeout": "0s",
            "retry_policy": _retry_policy()}


def _path_match(template: str) -> dict:
    binding = Binding("", template, "")
    return {"path": template} if binding.is_exact else {"safe_regex": {"regex": binding.path_regex()}}


def _shown(template: str) -> str:
    return re.sub(r"\{([a-z_][a-z0-9_.]*)=[^}]*\}", r"{\1}", template)


def guards(max_body_bytes: int) -> list[dict]:
    """Refusals that need no service: a key that is not printable ASCII (grpc-core would reject it
    and log it whole), a body declared larger than the limit (refused before it is sent)."""
    routes = []
    for header in KEY_HEADERS:
        routes.append({
            "match": {"prefix": "/", "headers": [{
                "name": header, "invert_match": True,
                "string_match": {"safe_regex": {"regex": r"[\x20-\x7e]*"}}}]},
            "direct_response": {"status": 401, "body": {"inline_string":
                f"Incorrect API key provided: the {header} header holds characters that are not "
                "printable ASCII."}},
            **_LOCAL})
    routes.append({
        "match": {"prefix": "/", "headers": [{
            "name": "content-length", "range_match": {"start": max_body_bytes + 1, "end": INT64_MAX}}]},
        "direct_response": {"status": 413, "body": {"inline_string":
            f"The request body is larger than this gateway's limit of {max_body_bytes} bytes."}},
        **_LOCAL})
    return routes


def own_paths(health_lua: str) -> list[dict]:
    """/livez (Envoy is up) and /healthz (it can serve model calls; ?verbose lists each service)."""
    return [
        {"match": {"path": "/livez"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
         **_per_filter(disabled=[TRANSCODER, ERRORS])},
        {"match": {"path": "/healthz"}, "direct_response": {"status": 500},
         "typed_per_filter_config": {
             **_per_filter(disabled=[TRANSCODER, ERRORS])["typed_per_filter_config"],
             HEALTH: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {
                 "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                 "source_code": {"inline_string": health_lua}}}}},
    ]


def metrics_paths(services: Iterable[str], admin_cluster: str) -> list[dict]:
    """GET /metrics (the router's request metrics), /metrics/<service> (each service's own) and
    /metrics/envoy (Envoy's stats), all in Prometheus' text format; only for the services whose
    metrics endpoint the edge was given (EdgeConfig.metrics_upstreams)."""
    plain = _per_filter(disabled=[TRANSCODER, ERRORS])
    get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    names = list(services)
    routes = [{"match": {"path": f"/metrics/{name}", "headers": get},
               "route": {"cluster": metrics_cluster(name), "timeout": "10s", "prefix_rewrite": "/metrics"},
               **plain} for name in names]
    if "router" in names:
        routes.append({"match": {"path": "/metrics", "headers": get},
                       "route": {"cluster": metrics_cluster("router"), "timeout": "10s"}, **plain})
    if names:
        routes.append({"match": {"path": "/metrics/envoy", "headers": get},
                       "route": {"cluster": admin_cluster, "timeout": "10s",
                                 "prefix_rewrite": "/stats/prometheus"}, **plain})
    return routes


# The dashboard keeps sessions in each replica's memory: a browser must keep reaching the same
# replica. Envoy sets this cookie (a session cookie) on a browser's first request and hashes it.
DASHBOARD_AFFINITY_COOKIE = "sb_dashboard_route"


def dashboard(cluster: str) -> list[dict]:
    """/ui/ and everything under it to the dashboard as plain HTTP (no transcoding, no error
    shaping: its pages are HTML), each browser to one replica; /ui alone redirects there."""
    affinity = [{"cookie": {"name": DASHBOARD_AFFINITY_COOKIE, "ttl": "0s", "path": "/ui"}}]
    return [{"match": {"path": "/ui"}, "redirect": {"path_redirect": "/ui/"}, **_LOCAL},
            {"match": {"prefix": "/ui/"},
             "route": {"cluster": cluster, "timeout": "30s", "hash_policy": affinity},
             **_per_filter(disabled=[TRANSCODER, ERRORS])}]


def metrics_cluster(service: str) -> str:
    return f"{service}_metrics"


def native_grpc(policies: Iterable[Policy]) -> list[dict]:
    """gRPC clients on the edge's port reach the typed API untouched: no transcoding, no error
    shaping, no header stripping, so they see the service's own status, message and metadata."""
    return [{"match": {"prefix": p.prefix, "headers": [_GRPC_CONTENT]}, "route": _to_service(p),
             **_per_filter(disabled=[TRANSCODER, ERRORS, STRIP])}
            for p in policies if p.is_grpc]


ANTHROPIC_PREFIX = "/v1/messages"  # errors here are in Anthropic's shape


def grpc_on_rest_paths(policies: Iterable[Policy]) -> list[dict]:
    """A gRPC content type on a REST path: the transcoder would pass it through untranscoded."""
    prefixes = "|".join(re.escape(p.prefix) for p in policies if not p.is_grpc)
    message = ("This path takes JSON (Content-Type: application/json). gRPC clients call "
               "/switchboard.gateway.v1.GatewayService/<Method>.")
    # Envoy answers a gRPC-typed request in gRPC's shape: these let the errors filter restore
    # the status and OpenAI's body (Anthropic's on /v1/messages) for the REST client that sent it.
    shaped = [{"header": {"key": "x-http-status", "value": "415"}},
              {"header": {"key": "x-error-type", "value": "invalid_request_error"}},
              {"header": {"key": "x-error-code", "value": "unsupported_media_type"}}]
    return [{"match": {"safe_regex": {"regex": regex}, "headers": [_GRPC_CONTENT]},
             "direct_response": {"status": 415, "body": {"inline_string": message}},
             "response_headers_to_add": shaped + extra, **_LOCAL}
            for regex, extra in ((f"{re.escape(ANTHROPIC_PREFIX)}.*",
                                  [{"header": {"key": "x-error-shape", "value": "anthropic"}}]),
                                 (f"(?:{prefixes}).*", []))]


def _policy_for(path: str, policies: Iterable[Policy]) -> Policy | None:
    matches = [p for p in policies if not p.is_grpc and path.startswith(p.prefix)]
    return max(matches, key=lambda p: len(p.prefix)) if matches else None


def rest(bindings: Iterable[Binding], policies: list[Policy], clusters: Mapping[str, str],
         admin_transcoder: dict) -> list[dict]:
    """One route per binding (method and path), then a 405 for every other method on that path.

    `clusters` maps a gRPC service name to the cluster that serves it; a binding whose prefix
    sends it elsewhere, or that no prefix covers, is a configuration error. Routes under /api/
    use `admin_transcoder` (strict about query parameters).
    """
    by_path: dict[str, list[str]] = {}
    ordered: list[tuple[int, bool, Binding, Policy]] = []
    for binding in bindings:
        policy = _policy_for(binding.template, policies)
        if policy is None or clusters.get(binding.service) != policy.cluster:
            raise ValueError(f"{binding.method} {binding.template} ({binding.service}) is not routed "
                             f"to its service: add a prefix for it to edge.render.ROUTES")
        ordered.append((policies.index(policy), not binding.is_exact, binding, policy))
        by_path.setdefault(binding.template, []).append(binding.method)
    ordered.sort(key=lambda entry: entry[:2])  # stable: the .proto order within a prefix
    admin = {"typed_per_filter_config": {TRANSCODER: admin_transcoder}}
    routes = [{"match": {**_path_match(b.template),
                         "headers": [{"name": ":method", "string_match": {"exact": b.method}}]},
               "route": _to_service(policy), **(admin if b.template.startswith("/api/") else {})}
              for _, _, b, policy in ordered]
    for template, methods in by_path.items():
        allowed = ", ".join(sorted(set(methods)))
        not_allowed: dict[str, Any] = {
            "match": _path_match(template),
            "direct_response": {"status": 405, "body": {"inline_string":
                f"Method not allowed: {_shown(template)} accepts {allowed}."}},
            "response_headers_to_add": [{"header": {"key": "allow", "value": allowed}}],
            **_LOCAL}
        routes.append(not_allowed)
    return routes


def unknown_path(bindings: Iterable[Binding], *, dashboard: bool = False) -> dict:
    """The last route: the same friendly 404 for every path the gateway does not serve."""
    openai = sorted({b.template.removeprefix("/v1/").split("/{")[0]
                     for b in bindings if b.template.startswith("/v1/")})
    message = (f"Unknown path. The OpenAI API is under /v1/ ({', '.join(openai)}); "
               "the admin API is under /api/" + ("; the dashboard is at /ui/." if dashboard else "."))
    return {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": {"inline_string": message}},
            **_LOCAL}
