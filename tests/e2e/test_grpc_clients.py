"""Internal clients call the typed gRPC API, through the edge's listener and straight to the router."""

from __future__ import annotations

import grpc
import pytest
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc


def request(content: str, model: str = "gpt-4o-mini") -> gateway_pb2.ChatCompletionRequest:
    req = gateway_pb2.ChatCompletionRequest(model=model)
    msg = req.messages.add(role="user")
    msg.content.string_value = content
    return req


@pytest.fixture(params=["edge", "router"])
def stub(request, stack):
    target = f"127.0.0.1:{stack.config.edge_port}" if request.param == "edge" else stack.config.target("router")
    with grpc.insecure_channel(target) as channel:
        yield gateway_pb2_grpc.GatewayServiceStub(channel), (("authorization", f"Bearer {stack.master_key}"),)


def test_typed_unary(stub):
    stub, md = stub
    reply = stub.CreateChatCompletion(request("typed hello"), metadata=md, timeout=10)
    assert isinstance(reply, gateway_pb2.ChatCompletion)
    assert reply.choices[0].message.content == "Echo: typed hello"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0


def test_typed_stream(stub):
    stub, md = stub
    chunks = list(stub.StreamChatCompletion(request("typed stream"), metadata=md, timeout=10))
    assert all(isinstance(c, gateway_pb2.ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == "Echo: typed stream"
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_typed_call_without_key_is_unauthenticated(stub):
    stub, _ = stub
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateChatCompletion(request("x"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
