"""The typed twins of /v1/messages and /v1/responses through the router's real gRPC server, a real
memory process (SQLite, for stored responses), a fake OpenAI upstream and real NATS: a typed
request reaches the provider as the REST route would send it, answers and events come typed and
in order, a stored response is continued through the twin, a bad field is INVALID_ARGUMENT naming
it, a stream cut midway ends with its real status, and each call is one usage record."""

from __future__ import annotations

import grpc
import orjson
from google.api import httpbody_pb2
import pytest
from router_fakes import ANSWER
from router_harness import start_router, stop_router
from switchboard.events.v1 import events_pb2
from switchboard.gateway.v1 import gateway_pb2 as pb

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def router(tmp_path, tokenizer, nats_url, memory):
    h = await start_router(tmp_path, tokenizer, nats_url, memory_target=memory.target)
    yield h
    await stop_router(h)


def _text(text: str) -> pb.ContentBlock:
    return pb.ContentBlock(type="text", text=text)


def _ask(text: str, model: str = "ok-model", **fields) -> pb.MessageRequest:
    return pb.MessageRequest(**{"model": model, "max_tokens": 100, **fields},
                             messages=[pb.MessageParam(role="user", content=[_text(text)])])


def _input(text: str) -> list[pb.ResponseItem]:
    return [pb.ResponseItem(type="message", role="user",
                            content=[pb.ResponseContent(type="input_text", text=text)])]


async def _refused(call):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            async for _ in call:
                pass
        else:
            await call
    return info.value


async def test_a_message_and_a_streamed_message(router):
    request = _ask("hi there", system=[_text("Be brief.")], temperature=0.2)
    message = await router.stub.CreateMessage(request, metadata=router.md(request_id="req-msg-1"))
    assert (message.type, message.role, message.model) == ("message", "assistant", "ok-model")
    assert [(b.type, b.text) for b in message.content] == [("text", ANSWER)]
    assert message.stop_reason == "end_turn"
    # The fake's 11 prompt tokens, 4 of them cached: Anthropic counts those apart.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.output_tokens) == (7, 4, 7)
    sent = router.upstream.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 100 and not sent.get("stream")

    events = [e async for e in router.stub.StreamMessage(request, metadata=router.md())]
    kinds = [e.type for e in events if e.type != "ping"]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[0].message.usage.input_tokens > 0  # the estimate, never 0
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == ANSWER
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 7
    assert router.upstream.requests[-1]["stream"] is True

    (_, unary), (_, streamed) = await router.events(2)
    assert unary.request_id == "req-msg-1" and not unary.stream and streamed.stream
    assert {unary.outcome, streamed.outcome} == {events_pb2.OUTCOME_SUCCESS}
    assert (unary.prompt_tokens, unary.completion_tokens) == (11, 7)
    assert unary.endpoint == streamed.endpoint == "chat.completions"


async def test_a_tool_use_request_reaches_the_provider_translated(router):
    request = pb.MessageRequest(
        model="ok-model", max_tokens=50,
        tools=[pb.MessageTool(name="weather", description="Today's weather")],
        tool_choice=pb.MessageToolChoice(type="auto", disable_parallel_tool_use=True),
        messages=[pb.MessageParam(role="user", content=[_text("Weather in Paris?")]),
                  pb.MessageParam(role="assistant", content=[
                      pb.ContentBlock(type="tool_use", id="toolu_1", name="weather")]),
                  pb.MessageParam(role="user", content=[pb.ContentBlock(
                      type="tool_result", tool_use_id="toolu_1", content=[_text("sunny, 21C")])])])
    request.tools[0].input_schema.update({"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer", "maximum": 7}}})
    request.messages[1].content[0].input.update({"city": "Paris"})
    message = await router.stub.CreateMessage(request, metadata=router.md())
    assert message.content[0].text == ANSWER
    sent = router.upstream.requests[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Today's weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"},
                                             "days": {"type": "integer", "maximum": 7}}}}}]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "weather",
                                                               "arguments": '{"city":"Paris"}'}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21C"}
    assert len(await router.events(1)) == 1


async def test_a_response_created_streamed_and_continued_through_the_twins(router):
    first = await router.stub.CreateResponse(pb.ResponseRequest(
        model="ok-model", instructions="Be brief.", input=_input("My name is Ada.")),
        metadata=router.md())
    assert (first.object, first.status, first.store) == ("response", "completed", True)
    assert first.output[0].type == "message" and first.output[0].content[0].text == ANSWER
    assert first.usage.total_tokens == 18 and first.extra_fields["created_at"] > 0
    assert (first.usage.input_tokens_details.cached_tokens,
            first.usage.output_tokens_details.reasoning_tokens) == (4, 2)

    events = [e async for e in router.stub.StreamResponse(pb.ResponseRequest(
        model="ok-model", input=_input("What is my name?"), previous_response_id=first.id),
        metadata=router.md())]
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-1] == "response.completed" and "response.output_text.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    final = events[-1].response
    assert final.previous_response_id == first.id and final.usage.output_tokens == 7
    # The provider was sent the stored turn before the new one, its instructions not again.
    assert router.upstream.requests[-1]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "My name is Ada."}]},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]}]

    third = await router.stub.CreateResponse(pb.ResponseRequest(
        model="ok-model", input=_input("And now?"), previous_response_id=final.id, store=False),
        metadata=router.md())
    assert third.store is False and len(router.upstream.requests[-1]["messages"]) == 5
    assert len(await router.events(3)) == 3  # one usage record per call


async def test_a_bad_field_is_invalid_argument_naming_it(router):
    cases = [
        (router.stub.CreateMessage, _ask("hi", max_tokens=0), "max_tokens", "max_tokens"),
        (router.stub.StreamMessage, _ask("hi"), "top_k", "top_k"),
        (router.stub.CreateResponse, pb.ResponseRequest(model="ok-model", input=_input("hi"),
                                                        truncation="auto"), "truncation", "truncation"),
        (router.stub.StreamResponse, pb.ResponseRequest(model="ok-model", input=_input("hi")),
         "conversation", "conversation"),
    ]
    cases[1][1].extra_body.update({"top_k": 5})
    cases[3][1].extra_body.update({"conversation": "conv_1"})
    for method, request, param, named in cases:
        error = await _refused(method(request, metadata=router.md()))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert named in error.details()
        trailers = dict(error.trailing_metadata())
        assert (trailers["x-http-status"], trailers["x-error-param"]) == ("400", param)
    assert router.upstream.requests == []  # refused before any provider call


async def test_a_stream_cut_midway_ends_with_its_real_status(router):
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in router.stub.StreamMessage(_ask("cut me", model="midstream-abort"),
                                                     metadata=router.md()):
            received.append(event.type)
    assert received[0] == "message_start" and "message_stop" not in received
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(info.value.trailing_metadata())["x-http-status"] == "502"

    created = None
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in router.stub.StreamResponse(pb.ResponseRequest(
                model="midstream-abort", input=_input("cut me")), metadata=router.md()):
            created = created or event.response.id
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    # Stored as the client had it: failed, with the error, as on the REST route.
    await router.app.stored_responses.drain()
    stored = orjson.loads((await router.stub.GetResponse(pb.GetResponseRequest(
        response_id=created), metadata=router.md())).data)
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error"
    records = await router.events(2)
    assert [(e.outcome, e.http_status) for _, e in records] == [(events_pb2.OUTCOME_ERROR, 502)] * 2


async def test_counting_a_message_s_tokens_as_the_route_does(router):
    request = pb.MessageRequest(model="ok-model", system=[_text("Be brief.")],
                                messages=[pb.MessageParam(role="user", content=[_text("hi there")])])
    call = router.stub.CountMessageTokensTyped(request, metadata=router.md())
    count = await call
    rest = await router.stub.CountMessageTokens(httpbody_pb2.HttpBody(data=orjson.dumps({
        "model": "ok-model", "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi there"}]})), metadata=router.md())
    assert count.input_tokens == orjson.loads(rest.data)["input_tokens"] > 0
    assert dict(await call.initial_metadata())["x-switchboard-token-count"] == "estimate"

    request.max_tokens = 10  # count_tokens takes no max_tokens: refused, not ignored
    error = await _refused(router.stub.CountMessageTokensTyped(request, metadata=router.md()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_tokens" in error.details()
    assert router.upstream.requests == []  # counted locally
