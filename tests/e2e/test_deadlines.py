"""One deadline per request through the real edge: the OpenAI SDK's own timeout, a gRPC caller's
deadline and the router's request timeout each end a slow provider's call with OpenAI's 504 (or a
stream's error event), and the provider's connection is closed when they do."""

from __future__ import annotations

import time
import uuid

import grpc
import openai
import pytest
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from tests.e2e.conftest import _start_stack
from tests.e2e.test_streaming_limits import fake_log

pytestmark = pytest.mark.timeout(120)


def _tag() -> str:
    return f"deadline-{uuid.uuid4().hex[:12]}"


def _sdk(stack, timeout: float) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, timeout=timeout,
                         max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_provider_hits_the_deadline_the_sdk_asked_for(stack, fake_openai, stream):
    tag, client = _tag(), _sdk(stack, 3.0)
    started = time.monotonic()
    # The SDK says how long it waits (x-stainless-read-timeout: 3.0); the provider would take 10 s.
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", stream=stream,
            messages=[{"role": "user", "content": f"hi [fake:slow-10000,tag-{tag}]"}])
    elapsed = time.monotonic() - started
    # The gateway's 504 arrived before the SDK's own timeout, so it is not an APITimeoutError.
    assert info.value.status_code == 504 and elapsed < 5
    assert info.value.body["code"] == "request_timeout" and info.value.body["type"] == "timeout"
    assert "x-stainless-timeout" in info.value.body["message"]
    ended = fake_log(fake_openai, tag)
    assert ended["outcome"] == "client_closed" and ended["ended_at"] - ended["started_at"] < 4


def test_a_grpc_callers_deadline_through_the_edge_stops_the_provider_call(stack, fake_openai):
    tag = _tag()
    request = gateway_pb2.ChatCompletionRequest(model="gpt-4o-mini")
    request.messages.add(role="user").content.string_value = f"hi [fake:slow-10000,tag-{tag}]"
    with grpc.insecure_channel(f"127.0.0.1:{stack.config.edge_port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            # The grpc-timeout header crosses Envoy to the router, which ends the call itself.
            # (Which status the edge then shows a native gRPC client is the edge's Lua's business.)
            stub.CreateChatCompletion(request, timeout=2.0, metadata=(
                ("authorization", f"Bearer {stack.master_key}"),))
    ended = fake_log(fake_openai, tag)
    assert ended["outcome"] == "client_closed" and ended["ended_at"] - ended["started_at"] < 3


@pytest.fixture(scope="module")
def quick_stack(tmp_path_factory, fake_openai):
    """A stack whose router gives every request 2 s."""
    s = _start_stack(tmp_path_factory.mktemp("stack-deadline"), fake_openai,
                     {"SWITCHBOARD_ROUTER_REQUEST_TIMEOUT_SECONDS": "2"})
    yield s
    s.stop()


def test_the_routers_request_timeout_ends_a_stream_with_an_error_event(quick_stack, fake_openai):
    tag = _tag()
    words = " ".join(f"w{i}" for i in range(100))  # a chunk every 100 ms: a 10 s stream
    stream = _sdk(quick_stack, 30).chat.completions.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": f"{words} [fake:slow-100,tag-{tag}]"}])
    received = []
    with pytest.raises(openai.APIError) as info:  # the SDK raises the stream's error event
        for chunk in stream:
            received.append(chunk)
    assert len(received) > 3  # it had started
    assert "SWITCHBOARD_ROUTER_REQUEST_TIMEOUT_SECONDS" in info.value.message
    ended = fake_log(fake_openai, tag)
    assert ended["outcome"] == "client_closed" and ended["ended_at"] - ended["started_at"] < 4
