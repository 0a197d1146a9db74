"""Errors at the edge: every gRPC status reaches a REST client as OpenAI's body with the right
status and nothing of gRPC's, every error Envoy makes itself has the same shape, and native gRPC
clients see the upstream's own status, message and trailing metadata untouched."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import grpc
import httpx
import pytest
from google.protobuf import empty_pb2
from switchboard.gateway.v1 import gateway_pb2_grpc

from edge import render
from edge.render import SERVICES, EdgeConfig
from tests.e2e.edge_alone import Edge, start_scripted_upstream
from tests.e2e.test_http_edge import assert_no_grpc_headers, assert_openai_error

# gRPC status -> the HTTP status a REST client must see when no service said otherwise.
HTTP_FOR_BARE_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 503, 9: 400,
                        10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
INTERNAL_TEXT = "Exception calling application: KeyError at /srv/app/secret_module.py:42"


@pytest.fixture(scope="module")
def upstream():
    server, port = start_scripted_upstream()
    yield port
    server.stop(0)


@pytest.fixture(scope="module")
def edge(upstream, tmp_path_factory):
    e = Edge(EdgeConfig(upstreams=dict.fromkeys(SERVICES, f"127.0.0.1:{upstream}")),
             tmp_path_factory.mktemp("edge") / "envoy.log")
    e.wait_healthy()
    yield e
    e.close()


def scripted(edge, status: int | None = None, message: str = "", metadata: str = "",
             path: str = "/v1/models", **headers) -> httpx.Response:
    h = {"authorization": "Bearer sk-test", **headers}
    if status is not None:
        h.update({"x-test-grpc-status": str(status), "x-test-message": urllib.parse.quote(message),
                  "x-test-metadata": metadata})
    return httpx.get(edge.url + path, headers=h, timeout=10)


@pytest.mark.parametrize("status", sorted(HTTP_FOR_BARE_STATUS), ids=lambda s: grpc.StatusCode(
    next(c.value for c in grpc.StatusCode if c.value[0] == s)).name)
def test_every_grpc_status_without_our_metadata_is_shaped_and_hides_its_text(edge, status):
    resp = scripted(edge, status, INTERNAL_TEXT)
    err = assert_openai_error(resp, HTTP_FOR_BARE_STATUS[status])
    assert_no_grpc_headers(resp)
    assert "secret_module" not in resp.text and "Exception" not in resp.text
    assert err["message"].endswith(".")  # a plain description, not an empty string


def test_our_errors_keep_their_status_fields_and_message(edge):
    message = "Modèle « gpt-x » : quota dépassé à 100 %"
    resp = scripted(edge, 9, message, "x-http-status=402;x-error-type=insufficient_quota;"
                    "x-error-code=insufficient_quota;x-error-param=model;retry-after=7")
    err = assert_openai_error(resp, 402, error_type="insufficient_quota", code="insufficient_quota",
                              param="model")
    assert err["message"] == message
    assert resp.headers["retry-after"] == "7"
    assert_no_grpc_headers(resp)


def test_a_long_message_is_cut_at_a_character_boundary(edge):
    resp = scripted(edge, 3, "é" * 3000, "x-http-status=400;x-error-type=invalid_request_error")
    err = assert_openai_error(resp, 400)
    assert 1000 < len(err["message"].encode()) <= 2048 + 3
    assert err["message"].rstrip(".").strip("é") == ""


def test_success_has_no_grpc_headers(edge):
    resp = scripted(edge)
    assert resp.status_code == 200 and resp.json() == {"object": "list", "data": []}
    assert_no_grpc_headers(resp)


@pytest.mark.parametrize("status", sorted(HTTP_FOR_BARE_STATUS))
def test_native_grpc_clients_see_the_upstreams_status_untouched(edge, status):
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListModels(empty_pb2.Empty(), timeout=10, metadata=(
                ("x-test-grpc-status", str(status)), ("x-test-message", "as the router said"),
                ("x-test-metadata", "x-http-status=404;x-error-code=model_not_found")))
    assert info.value.code().value[0] == status
    assert info.value.details() == "as the router said"
    trailing = dict(info.value.trailing_metadata())
    assert trailing["x-error-code"] == "model_not_found" and trailing["x-http-status"] == "404"


def test_unknown_paths_say_the_same_friendly_thing(edge):
    answers = [assert_openai_error(httpx.request(method, edge.url + path), 404)["message"]
               for method, path in [("POST", "/v1/assistants"), ("POST", "/v1/batches"),
                                    ("GET", "/nothing-here"), ("GET", "/v1/models/x/y/../../../etc")]]
    assert len(set(answers)) == 1
    assert "Could not resolve" not in answers[0] and "/v1/" in answers[0]


def test_a_path_variable_that_is_not_utf8_is_an_unknown_path(edge):
    # Unescaped into a proto string it would fail in the service ("String field had bad UTF-8").
    assert_openai_error(httpx.get(edge.url + "/v1/models/%ff%fe", headers={"authorization": "Bearer x"}), 404)
    ok = httpx.get(edge.url + "/v1/models/caf%C3%A9", headers={"authorization": "Bearer x"})
    assert ok.status_code == 200  # a UTF-8 character, escaped, reaches the service


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/v1/chat/completions", "POST"), ("DELETE", "/v1/embeddings", "POST"),
    ("POST", "/v1/models", "GET"), ("PUT", "/api/keys", "GET, POST")])
def test_a_wrong_method_is_405_naming_the_allowed_ones(edge, method, path, allowed):
    resp = httpx.request(method, edge.url + path, headers={"authorization": "Bearer sk-test"})
    err = assert_openai_error(resp, 405, code="method_not_allowed")
    assert resp.headers["allow"] == allowed and allowed in err["message"]


def test_grpc_content_type_on_a_rest_path_is_415_not_an_empty_200(edge):
    resp = httpx.post(edge.url + "/v1/chat/completions", content=b"{}",
                      headers={"content-type": "application/grpc", "authorization": "Bearer sk-test"})
    assert_openai_error(resp, 415, code="unsupported_media_type")
    assert_no_grpc_headers(resp)


def test_declared_oversize_body_is_refused_at_once(edge):
    declared = EdgeConfig().max_body_bytes + 1
    with socket.create_connection(("127.0.0.1", edge.config.listen_port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{}" % declared)
        reply = conn.recv(65536).decode()
        assert time.monotonic() - started < 2
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_oversize_headers_are_431(edge):
    resp = scripted(edge, **{"x-big": "a" * (EdgeConfig().max_request_headers_kb * 1024 + 1)})
    assert_openai_error(resp, 431, code="request_header_fields_too_large")


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
def test_a_key_that_is_not_ascii_is_401_at_the_edge(edge, header):
    value = (b"Bearer " if header == "authorization" else b"") + b"sk-secret-key\xe9"
    with socket.create_connection(("127.0.0.1", edge.config.listen_port), timeout=5) as conn:
        conn.sendall(b"GET /v1/models HTTP/1.1\r\nHost: edge\r\n%s: %s\r\n\r\n" % (header.encode(), value))
        reply = conn.recv(65536).decode(errors="replace")
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 401")
    err = json.loads(body)["error"]
    assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
    assert "sk-secret-key" not in reply


def test_transcoder_errors_are_openai_shaped(edge):
    # The admin routes' transcoder refuses a query parameter the request does not define.
    resp = httpx.get(edge.url + "/api/routing/stats?modle=gpt-4o", headers={"authorization": "Bearer sk-test"})
    err = assert_openai_error(resp, 400, error_type="invalid_request_error")
    assert "modle" in err["message"]


@pytest.fixture(params=["billing", "guardrails", "memory", "router", "auth"])
def one_dead_service(request, upstream, tmp_path):
    """The edge with one cluster pointing at a port where nothing listens."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    upstreams = dict.fromkeys(SERVICES, f"127.0.0.1:{upstream}")
    upstreams[request.param] = f"127.0.0.1:{closed.getsockname()[1]}"
    e = Edge(EdgeConfig(upstreams=upstreams), tmp_path / "envoy.log")
    deadline = time.monotonic() + 20
    while True:
        try:
            services = httpx.get(e.url + "/healthz?verbose").json()["services"]
            other = "auth" if request.param == "router" else "router"
            if not services[request.param]["ready"] and services[other]["ready"]:
                break
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, "the edge never saw the dead service"
        time.sleep(0.1)
    yield e, request.param
    e.close()
    closed.close()


def test_healthz_fails_only_for_what_model_calls_need(one_dead_service):
    e, dead = one_dead_service
    resp = httpx.get(e.url + "/healthz")
    if dead in ("router", "auth"):
        assert (resp.status_code, resp.json()) == (503, {"status": "unhealthy", "not_ready": [dead]})
    else:
        assert (resp.status_code, resp.json()) == (200, {"status": "healthy"})
    verbose = httpx.get(e.url + "/healthz?verbose").json()["services"]
    assert {name for name, s in verbose.items() if not s["ready"]} == {dead}


def test_a_dead_service_is_503_in_openai_shape(one_dead_service):
    e, dead = one_dead_service
    path = {"billing": "/api/billing/spend", "guardrails": "/api/guardrails/policies",
            "memory": "/api/memory/collections", "router": "/v1/models", "auth": "/api/keys"}[dead]
    resp = httpx.get(e.url + path, headers={"authorization": "Bearer sk-test"})
    err = assert_openai_error(resp, 503, error_type="service_unavailable")
    assert err["message"] == f"The {dead} service is unavailable; try again shortly."


def test_a_route_timeout_is_504_in_openai_shape(upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(render, "ROUTES", tuple(
        (prefix, cluster, "0.3s" if prefix == "/api/routing" else timeout)
        for prefix, cluster, timeout in render.ROUTES))
    e = Edge(EdgeConfig(upstreams=dict.fromkeys(SERVICES, f"127.0.0.1:{upstream}")), tmp_path / "envoy.log")
    try:
        e.wait_healthy()
        resp = scripted(e, path="/api/routing/stats", **{"x-test-sleep": "2"})
        assert_openai_error(resp, 504, error_type="timeout")
    finally:
        e.close()


# --- Anthropic's routes: the same errors in Anthropic's shape -------------------------------------

def assert_anthropic_error(resp: httpx.Response, status: int, error_type: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert body["error"]["type"] == error_type and body["error"]["message"], body
    return body["error"]


def test_a_service_error_marked_anthropic_is_in_anthropics_shape(edge):
    resp = scripted(edge, 8, "Slow down.", "x-http-status=429;x-error-type=rate_limit_error;"
                    "x-error-code=rate_limit_exceeded;x-error-shape=anthropic;retry-after=3")
    assert assert_anthropic_error(resp, 429, "rate_limit_error")["message"] == "Slow down."
    assert resp.headers["retry-after"] == "3"
    assert "x-error-shape" not in resp.headers
    assert_no_grpc_headers(resp)


@pytest.mark.parametrize("method, path, status, error_type", [
    ("POST", "/v1/messages/batches", 404, "not_found_error"),
    ("GET", "/v1/messages", 405, "invalid_request_error"),
    ("GET", "/v1/messages/count_tokens", 405, "invalid_request_error")])
def test_envoys_own_replies_on_anthropic_routes_are_anthropic_shaped(edge, method, path, status, error_type):
    assert_anthropic_error(httpx.request(method, edge.url + path, headers={"x-api-key": "sk-test"}),
                           status, error_type)


def test_oversize_body_and_bad_key_on_messages_are_anthropic_shaped(edge):
    declared = EdgeConfig().max_body_bytes + 1
    replies = []
    for head in (b"Content-Length: %d\r\n\r\n{}" % declared,
                 b"x-api-key: sk-secret-key\xe9\r\nContent-Length: 2\r\n\r\n{}"):
        with socket.create_connection(("127.0.0.1", edge.config.listen_port), timeout=5) as conn:
            conn.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n" + head)
            replies.append(conn.recv(65536).decode(errors="replace").partition("\r\n\r\n"))
    (too_big, _, big_body), (bad_key, _, key_body) = replies
    assert too_big.startswith("HTTP/1.1 413") and bad_key.startswith("HTTP/1.1 401")
    assert json.loads(big_body) == {"type": "error", "error": {
        "type": "request_too_large", "message": json.loads(big_body)["error"]["message"]}}
    assert json.loads(key_body)["error"]["type"] == "authentication_error"
    assert "sk-secret" not in key_body
