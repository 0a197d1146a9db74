"""Raw HTTP through Envoy: byte-exact SSE, OpenAI-shaped errors with the right status, health."""

from __future__ import annotations

import json

import httpx
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


def test_healthz_reports_every_service_ready(stack):
    resp = httpx.get(stack.edge_url + "/healthz")
    assert resp.status_code == 200


@pytest.mark.parametrize("path", ["/api/billing/spend", "/api/keys"])
def test_admin_routes_need_a_key(stack, path):
    assert_openai_error(httpx.get(stack.edge_url + path), 401)
