"""A non-streamed answer leaves the router in one gRPC batch (ChatCompletionsWhole, its headers as
trailing metadata) and reaches the client as one Content-Length response with every header the
streaming RPC gave it; "stream": true still streams; a body the edge cannot read gets the
router's own 400 (edge/whole.py)."""

from __future__ import annotations

import json
import socket

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from switchboard.gateway.v1 import gateway_pb2_grpc

from tests.e2e.test_http_edge import CHAT, assert_no_grpc_headers, assert_openai_error, post
from tests.e2e.test_usage_billing import create_key, wait_for_records

pytestmark = pytest.mark.timeout(180)
MODEL = "gpt-4o-mini"  # priced, so the answer has a cost


def _raw(stack, body: bytes, secret: str) -> bytes:
    """The response bytes as the client's socket reads them (httpx hides the framing)."""
    host, port = stack.edge_url.removeprefix("http://").split(":")
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
               f"{secret}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_a_whole_answer_has_content_length_and_the_routers_headers(stack):
    key_id, secret = create_key(stack, rate_limits={"requests_per_minute": 100})
    body = json.dumps({**CHAT, "model": MODEL}).encode()
    head, _, payload = _raw(stack, body, secret).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    pairs = [line.lower().split(": ", 1) for line in lines[1:]]
    headers = dict(pairs)
    assert len(pairs) == len(headers), pairs  # each once: Envoy's x-request-id is the router's
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == len(payload)
    assert json.loads(payload)["object"] == "chat.completion"
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert int(headers["x-ratelimit-remaining-requests"]) < 100
    (record,) = wait_for_records(stack, key_id, 1)
    assert record["cost_micros_usd"] > 0
    assert headers["x-switchboard-cost-usd"] == f"{record['cost_micros_usd'] / 1e6:.6f}"
    assert headers["x-request-id"] == record["request_id"]
    assert not [h for h in headers if h.startswith(("grpc-", "x-error-", "x-http-status"))]


@pytest.mark.parametrize("stream", [False, "absent"])
def test_stream_false_or_absent_is_whole_and_true_is_chunked_sse(stack, stream):
    body = {**CHAT} if stream == "absent" else {**CHAT, "stream": stream}
    whole = post(stack, body)
    assert whole.status_code == 200, whole.text
    assert "content-length" in whole.headers and "transfer-encoding" not in whole.headers
    assert whole.json()["object"] == "chat.completion"
    streamed = post(stack, {**CHAT, "stream": True})
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert_no_grpc_headers(whole)


@pytest.mark.parametrize("body, param", [
    (b'{"model": "switchboard-local", "messages": [', None),  # not JSON: json_to_metadata gives up
    (b'[1, 2]', None),  # JSON, not an object
    (json.dumps({**CHAT, "stream": "true"}).encode(), "stream"),  # not a boolean
])
def test_a_body_the_edge_cannot_route_by_gets_the_routers_400(stack, body, param):
    resp = post(stack, body)
    assert_openai_error(resp, 400, error_type="invalid_request_error", param=param)
    assert_no_grpc_headers(resp)


def test_a_stream_sent_to_the_whole_rpc_is_refused(stack):
    # A native gRPC client may call the twin itself: it answers whole or not at all.
    body = json.dumps({**CHAT, "stream": True}).encode()
    with grpc.insecure_channel(stack.edge_url.removeprefix("http://")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            gateway_pb2_grpc.GatewayServiceStub(channel).ChatCompletionsWhole(
                httpbody_pb2.HttpBody(content_type="application/json", data=body),
                metadata=(("authorization", f"Bearer {stack.master_key}"),), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream" in refused.value.details()


def test_curl_form_content_type_still_streams(stack):
    # curl -d declares form data; the router reads the body as JSON whatever it says.
    resp = httpx.post(stack.edge_url + "/v1/chat/completions",
                      content=json.dumps({**CHAT, "stream": True}),
                      headers={"authorization": f"Bearer {stack.master_key}",
                               "content-type": "application/x-www-form-urlencoded"}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")


def test_a_client_gone_before_the_whole_answer_is_recorded_once(stack):
    key_id, secret = create_key(stack)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "walk away [fake:slow-3000]"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(stack.edge_url + "/v1/chat/completions", json=body,
                   headers={"authorization": f"Bearer {secret}"}, timeout=1.0)
    (record,) = wait_for_records(stack, key_id, 1)
    assert record["outcome"] == "client_abort"


@pytest.mark.parametrize("stream", [False, True])
def test_a_body_above_what_the_edge_reads_is_answered_as_before(stack, stream):
    from edge.whole import MAX_READ_BYTES

    long = {**CHAT, "stream": stream, "messages": [{"role": "user", "content": "x" * MAX_READ_BYTES}]}
    resp = post(stack, long)
    assert resp.status_code == 200, resp.text
    assert resp.headers["transfer-encoding"] == "chunked"  # the streaming RPC, relayed
    if stream:
        assert resp.text.endswith("data: [DONE]\n\n")
    else:
        assert resp.json()["object"] == "chat.completion"
