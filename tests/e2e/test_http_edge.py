"""Raw HTTP through Envoy: byte-exact SSE, OpenAI-shaped errors with the right status, health."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid

import httpx
import openai
import pytest


def post(stack, body, *, key: str | None = "master", path="/v1/chat/completions", headers=None, **kw):
    h = {"content-type": "application/json", **(headers or {})}
    if key == "master":
        h["authorization"] = f"Bearer {stack.master_key}"
    elif key is not None:
        h["authorization"] = f"Bearer {key}"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(stack.edge_url + path, content=data, headers=h, timeout=30, **kw)


def assert_openai_error(resp, status: int, *, code=None, error_type=None, param=None):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if code is not None:
        assert err["code"] == code
    if error_type is not None:
        assert err["type"] == error_type
    if param is not None:
        assert err["param"] == param
    return err


def assert_no_grpc_headers(resp) -> None:
    """Nothing of gRPC's (or our internal error metadata) reaches a REST client."""
    leaked = [k for k in resp.headers if k.lower().startswith(("grpc-", "x-error-", "x-http-status"))]
    assert leaked == [], leaked


CHAT = {"model": "switchboard-local", "messages": [{"role": "user", "content": "hi"}]}


def fake(body: dict, behavior: str) -> dict:
    """The same request to the upstream fake, asking it to misbehave (its `[fake:...]` marker)."""
    return {**body, "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"misbehave [fake:{behavior}]"}]}


def test_non_stream_is_plain_json_with_request_id(stack):
    resp = post(stack, CHAT)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-request-id"]
    assert "grpc-status" not in resp.headers
    assert resp.json()["object"] == "chat.completion"


def test_stream_is_sse_ending_with_done(stack):
    resp = post(stack, {**CHAT, "stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    body = resp.text
    events = [e for e in body.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert body.endswith("data: [DONE]\n\n")
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1] if e.startswith("data: ")]
    assert payloads and all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"


def test_missing_key_is_401(stack):
    err = assert_openai_error(post(stack, CHAT, key=None), 401, error_type="authentication_error",
                              code="missing_api_key")
    assert "API key" in err["message"]


def test_unknown_key_is_401(stack):
    assert_openai_error(post(stack, CHAT, key="sk-not-a-real-key"), 401, code="invalid_api_key")


def test_malformed_json_is_400(stack):
    assert_openai_error(post(stack, b'{"model": "x", "messages": [', key="master"), 400,
                        error_type="invalid_request_error")


def test_missing_messages_names_the_param(stack):
    assert_openai_error(post(stack, {"model": "switchboard-local"}), 400, param="messages")


def test_wrong_type_names_the_param(stack):
    err = assert_openai_error(post(stack, {**CHAT, "messages": "hi"}), 400)
    assert err["param"] == "messages"


def test_unknown_model_is_404(stack):
    assert_openai_error(post(stack, {**CHAT, "model": "no-such-model"}), 404, code="model_not_found")


def test_unknown_path_is_404_in_openai_shape(stack):
    resp = httpx.get(stack.edge_url + "/v1/no/such/route",
                     headers={"authorization": f"Bearer {stack.master_key}"})
    assert_openai_error(resp, 404)
    assert_openai_error(httpx.get(stack.edge_url + "/nothing-here"), 404)


def test_oversize_body_is_413(stack):
    huge = {**CHAT, "messages": [{"role": "user", "content": "x" * (33 * 1024 * 1024)}]}
    assert_openai_error(post(stack, huge), 413)


def test_upstream_rate_limit_passes_as_429_with_retry_after(stack):
    resp = post(stack, fake(CHAT, "error-429"))
    assert_openai_error(resp, 429, error_type="rate_limit_error")


def test_upstream_validation_error_keeps_its_param(stack):
    resp = post(stack, {**CHAT, "model": "gpt-4o-mini", "temperature": 7})
    assert_openai_error(resp, 400, param="temperature")


def test_upstream_server_error_is_502(stack):
    resp = post(stack, fake(CHAT, "error-500"))
    assert_openai_error(resp, 502)


def test_upstream_abort_mid_stream_becomes_an_error_event(stack):
    resp = post(stack, {**fake(CHAT, "abort-mid-stream"), "stream": True})
    assert resp.status_code == 200
    events = [e for e in resp.text.split("\n\n") if e.startswith("data: ")]
    last = json.loads(events[-1][len("data: "):])
    assert set(last["error"]) == {"message", "type", "param", "code"}


def test_models_route_lists_models(stack):
    resp = httpx.get(stack.base_url + "/models", headers={"authorization": f"Bearer {stack.master_key}"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    assert {"switchboard-local", "gpt-4o-mini"} <= {m["id"] for m in body["data"]}


def test_healthz_says_healthy_in_seed_002s_shape(stack):
    resp = httpx.get(stack.edge_url + "/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "healthy"}


def test_healthz_verbose_lists_every_services_readiness(stack):
    body = httpx.get(stack.edge_url + "/healthz?verbose").json()
    assert body["status"] == "healthy"
    assert set(body["services"]) == {"router", "auth", "billing", "guardrails", "memory"}
    assert all(s["ready"] and s["healthy_hosts"] == s["hosts"] == 1 for s in body["services"].values())
    assert {n for n, s in body["services"].items() if s["required"]} == {"router", "auth"}


def test_models_retrieve_with_a_slash_in_the_id(stack):
    # The SDK sends /v1/models/openai%2Fgpt-4o-mini; the edge unescapes it for the router.
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
    assert client.models.retrieve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


@pytest.mark.parametrize("body", [CHAT, {**CHAT, "stream": True}], ids=["json", "sse"])
def test_responses_carry_no_grpc_headers(stack, body):
    resp = post(stack, body)
    assert resp.status_code == 200
    assert_no_grpc_headers(resp)
    models = httpx.get(stack.base_url + "/models", headers={"authorization": f"Bearer {stack.master_key}"})
    assert_no_grpc_headers(models)
    assert_no_grpc_headers(post(stack, {"model": "switchboard-local"}))  # an error


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl (for HTTP/2 trailers) is not installed")
def test_http2_streams_end_without_grpc_trailers(stack):
    out = subprocess.run(
        ["curl", "-sS", "-v", "--http2-prior-knowledge", "-o", "/dev/null", stack.base_url + "/chat/completions",
         "-H", f"authorization: Bearer {stack.master_key}", "-H", "content-type: application/json",
         "-d", json.dumps({**CHAT, "stream": True})], capture_output=True, text=True, timeout=30)
    received = [line for line in out.stderr.splitlines() if line.startswith("< ")]
    assert "< HTTP/2 200" in received[0]
    assert [line for line in received if line.lower().startswith("< grpc-")] == []


@pytest.mark.parametrize("kib", [8, 12, 16, 24, 30])
def test_headers_up_to_the_edge_limit_reach_the_services(stack, kib):
    # gRPC's default metadata limit refused 8-16 KiB at random with RESOURCE_EXHAUSTED (a 429).
    statuses = {post(stack, CHAT, headers={"x-padding": "p" * (kib * 1024)}).status_code for _ in range(10)}
    assert statuses == {200}


def test_a_key_that_is_not_ascii_never_reaches_a_service_log(stack):
    marker = f"sk-marker-{uuid.uuid4().hex}"
    with socket.create_connection(("127.0.0.1", stack.config.edge_port), timeout=5) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nContent-Length: 2\r\n"
                     b"Authorization: Bearer %s\xe9\r\n\r\n{}" % marker.encode())
        reply = conn.recv(65536).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 401")
    post(stack, CHAT)  # a request after it: whatever it logged is in the files by now
    assert [p.name for p in stack.logs.glob("*.log") if marker in p.read_text(errors="replace")] == []


@pytest.mark.parametrize("path", ["/api/billing/spend", "/api/keys"])
def test_admin_routes_need_a_key(stack, path):
    assert_openai_error(httpx.get(stack.edge_url + path), 401)
