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


def _failure(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.mark.parametrize("case", ["not found", "invalid argument", "unauthenticated"])
def test_errors_are_the_routers_own_through_the_edge(stack, case):
    """The edge passes native gRPC through untouched: the same code, message and trailing
    metadata as the router gives when called directly (not UNIMPLEMENTED or INTERNAL made from
    an HTTP status)."""
    key = (("authorization", f"Bearer {stack.master_key}"),)
    calls = {
        "not found": lambda s: s.GetModel(gateway_pb2.GetModelRequest(model="no-such-model"), metadata=key, timeout=10),
        "invalid argument": lambda s: s.CreateChatCompletion(
            gateway_pb2.ChatCompletionRequest(model="switchboard-local"), metadata=key, timeout=10),
        "unauthenticated": lambda s: s.CreateChatCompletion(request("x"), timeout=10,
                                                            metadata=(("authorization", "Bearer sk-wrong"),)),
    }
    expected_code = {"not found": grpc.StatusCode.NOT_FOUND, "invalid argument": grpc.StatusCode.INVALID_ARGUMENT,
                     "unauthenticated": grpc.StatusCode.UNAUTHENTICATED}[case]
    seen = []
    for target in (f"127.0.0.1:{stack.config.edge_port}", stack.config.target("router")):
        with grpc.insecure_channel(target) as channel:
            err = _failure(lambda: calls[case](gateway_pb2_grpc.GatewayServiceStub(channel)))
        ours = {k: v for k, v in err.trailing_metadata() if k.startswith(("x-error-", "x-http-status"))}
        seen.append((err.code(), err.details(), ours))
    through_edge, direct = seen
    assert through_edge == direct
    assert through_edge[0] == expected_code
    assert through_edge[2]["x-error-type"]


def test_typed_answers_keep_the_fields_the_proto_does_not_know(stub):
    stub, md = stub
    reply = stub.CreateChatCompletion(request("typed extra"), metadata=md, timeout=10)
    # OpenAI's message carries "annotations", which the proto has no field for (yet).
    assert list(reply.choices[0].message.extra_fields["annotations"]) == []
    chunks = list(stub.StreamChatCompletion(request("typed extra"), metadata=md, timeout=10))
    # ... and its chunks "service_tier", which ChatCompletionChunk lacks.
    assert {c.extra_fields["service_tier"] for c in chunks} == {"default"}


def _user(text: str) -> gateway_pb2.MessageParam:
    return gateway_pb2.MessageParam(role="user", content=[gateway_pb2.ContentBlock(type="text", text=text)])


def test_typed_message_twins_with_a_tool_round_trip(stub):
    stub, md = stub
    reply = stub.CreateMessage(gateway_pb2.MessageRequest(
        model="gpt-4o-mini", max_tokens=50, messages=[_user("typed message")]), metadata=md, timeout=10)
    assert isinstance(reply, gateway_pb2.Message) and reply.content[0].text == "Echo: typed message"
    assert reply.stop_reason == "end_turn" and reply.usage.output_tokens > 0

    request = gateway_pb2.MessageRequest(
        model="gpt-4o-mini", max_tokens=50, messages=[_user("call_tool for Paris")],
        tools=[gateway_pb2.MessageTool(name="weather")])
    request.tools[0].input_schema.update({"type": "object", "properties": {"city": {"type": "string"}}})
    events = list(stub.StreamMessage(request, metadata=md, timeout=10))
    kinds = [e.type for e in events if e.type != "ping"]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    block = next(e.content_block for e in events if e.type == "content_block_start")
    assert (block.type, block.name) == ("tool_use", "weather")
    assert next(e for e in events if e.type == "message_delta").delta.stop_reason == "tool_use"

    used = gateway_pb2.ContentBlock(type="tool_use", id=block.id, name="weather")
    used.input.update({"city": "Paris"})
    request.messages.extend([
        gateway_pb2.MessageParam(role="assistant", content=[used]),
        gateway_pb2.MessageParam(role="user", content=[gateway_pb2.ContentBlock(
            type="tool_result", tool_use_id=block.id,
            content=[gateway_pb2.ContentBlock(type="text", text="sunny")])])])
    reply = stub.CreateMessage(request, metadata=md, timeout=10)
    assert reply.content[0].text == "Echo: sunny"


def test_typed_response_twins_continue_a_stored_response(stub):
    stub, md = stub

    def ask(text: str) -> list[gateway_pb2.ResponseItem]:
        return [gateway_pb2.ResponseItem(type="message", role="user", content=[
            gateway_pb2.ResponseContent(type="input_text", text=text)])]

    first = stub.CreateResponse(gateway_pb2.ResponseRequest(model="gpt-4o-mini", input=ask("typed one")),
                                metadata=md, timeout=10)
    assert first.status == "completed" and first.output[0].content[0].text == "Echo: typed one"
    events = list(stub.StreamResponse(gateway_pb2.ResponseRequest(
        model="gpt-4o-mini", input=ask("typed two"), previous_response_id=first.id),
        metadata=md, timeout=10))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.previous_response_id == first.id and final.output[0].content[0].text == "Echo: typed two"
