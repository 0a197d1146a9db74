"""The router's real gRPC server, a fake auth servicer, a fake OpenAI upstream, real NATS JetStream."""

from __future__ import annotations

import uuid

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from switchboard.events.v1 import events_pb2
from switchboard.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.timeout(60)


def _body(**fields) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": "hi there"}]} | fields)


def _sse_payloads(messages) -> list[bytes]:
    data = b"".join(m.data for m in messages)
    assert data.endswith(b"data: [DONE]\n\n")
    events = data.split(b"\n\n")
    assert events[-1] == b""
    return [e.removeprefix(b"data: ") for e in events[:-1]]


async def test_non_stream_forwards_the_upstream_json_as_is(router):
    call, messages = await router.chat(_body(model="ok-model", my_future_param=3),
                                       request_id="req-nonstream-1")
    assert len(messages) == 1
    assert messages[0].content_type == "application/json"
    answer = orjson.loads(messages[0].data)
    assert answer["object"] == "chat.completion"
    assert answer["future_field"] == {"kept": True}  # unknown response fields kept
    assert dict(await call.initial_metadata())["x-request-id"] == "req-nonstream-1"
    sent = router.upstream.requests[-1]
    assert sent["my_future_param"] == 3  # unknown request fields kept
    assert router.upstream.headers[-1]["Authorization"] == "Bearer sk-upstream-secret"

    (headers, event), = await router.events(1)
    # The router mints the event id (billing's dedup key); x-request-id only correlates. The
    # message id is its batch's (router_harness checks it), never one event's.
    assert headers["Nats-Msg-Id"] != event.event_id
    assert uuid.UUID(event.event_id).version == 7
    assert event.request_id == "req-nonstream-1"
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens) == (11, 7, 18)
    assert event.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert event.outcome == events_pb2.OUTCOME_SUCCESS
    assert (event.key_id, event.tenant_id) == ("key-good", "tenant-1")
    assert (event.model, event.provider, event.deployment, event.upstream_model) == (
        "ok-model", "fake", "fake/ok-model", "ok-model")
    assert event.endpoint == "chat.completions" and not event.stream
    assert event.http_status == 200


async def test_stream_is_sse_framed_and_hides_the_usage_chunk_it_added(router):
    call, messages = await router.chat(_body(model="ok-model", stream=True), request_id="req-s1")
    assert {m.content_type for m in messages} == {"text/event-stream"}
    payloads = _sse_payloads(messages)
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello there from the fake upstream"
    # The router asked the provider for usage although the client did not.
    assert router.upstream.requests[-1]["stream_options"] == {"include_usage": True}

    (headers, event), = await router.events(1)
    assert event.event_id and event.request_id == "req-s1"
    assert event.stream and event.outcome == events_pb2.OUTCOME_SUCCESS
    assert (event.prompt_tokens, event.completion_tokens) == (11, 7)
    assert event.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert event.time_to_first_byte_ms <= event.latency_ms


async def test_stream_keeps_the_usage_chunk_when_the_client_asks(router):
    _, messages = await router.chat(_body(model="ok-model", stream=True,
                                          stream_options={"include_usage": True}))
    chunks = [orjson.loads(p) for p in _sse_payloads(messages)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 18


async def test_stream_without_provider_usage_is_counted_with_tiktoken(router, tokenizer):
    _, messages = await router.chat(_body(model="no-usage", stream=True))
    assert _sse_payloads(messages)[-1] == b"[DONE]"
    (_, event), = await router.events(1)
    assert event.token_source == events_pb2.TOKEN_SOURCE_ESTIMATED
    assert event.completion_tokens == tokenizer.count("no-usage", "Hello there from the fake upstream")
    assert event.prompt_tokens == tokenizer.count_chat("no-usage", [{"role": "user", "content": "hi there"}])


async def test_local_model_answers_with_no_provider(router):
    _, messages = await router.chat(_body(model="switchboard-local"))
    answer = orjson.loads(messages[0].data)
    assert answer["choices"][0]["message"]["content"] == "You said: hi there"
    _, messages = await router.chat(_body(model="switchboard-local", stream=True))
    assert len(messages) >= 3  # streamed in pieces
    (_, e1), (_, e2) = await router.events(2)
    assert e1.provider == "local" and e1.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert e1.completion_tokens == e2.completion_tokens > 0


async def test_typed_twins_use_the_same_implementation(router):
    request = gateway_pb2.ChatCompletionRequest(
        model="switchboard-local", messages=[gateway_pb2.ChatMessage(role="user")], seed=7)
    request.messages[0].content.string_value = "typed hello"
    request.extra_body.update({"my_extension": 1})
    md = router.md()
    completion = await router.stub.CreateChatCompletion(request, metadata=md)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "You said: typed hello"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    chunks = [c async for c in router.stub.StreamChatCompletion(request, metadata=router.md())]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "You said: typed hello"
    assert chunks[-1].choices[0].finish_reason == "stop"

    request.model = "ok-model"
    await router.stub.CreateChatCompletion(request, metadata=router.md())
    sent = router.upstream.requests[-1]
    assert sent["seed"] == 7 and sent["my_extension"] == 1 and sent["stream"] is False


async def test_embeddings_and_models(router):
    reply = await router.stub.Embeddings(httpbody_pb2.HttpBody(data=orjson.dumps(
        {"model": "switchboard-local", "input": ["a", "b"], "encoding_format": "base64"})),
        metadata=router.md())
    body = orjson.loads(reply.data)
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(isinstance(d["embedding"], str) for d in body["data"])

    models = orjson.loads((await router.stub.ListModels(empty_pb2.Empty(), metadata=router.md())).data)
    ids = {m["id"] for m in models["data"]}
    assert models["object"] == "list"
    assert {"switchboard-local", "ok-model", "with-failover"} <= ids
    assert "gpt-secret" not in ids  # its provider has no key
    assert not any("*" in i for i in ids)

    one = orjson.loads((await router.stub.GetModel(gateway_pb2.GetModelRequest(model="fake/anything"),
                                                   metadata=router.md())).data)
    assert one == {"id": "fake/anything", "object": "model", "created": one["created"], "owned_by": "fake"}


async def test_typed_twins_keep_the_fields_the_proto_does_not_know(router):
    request = gateway_pb2.ChatCompletionRequest(
        model="future-fields", messages=[gateway_pb2.ChatMessage(role="user")])
    request.messages[0].content.string_value = "hi"
    completion = await router.stub.CreateChatCompletion(request, metadata=router.md())
    assert completion.extra_fields["future_field"] == {"kept": True}
    annotations = completion.choices[0].message.extra_fields["annotations"]
    assert annotations[0]["url_citation"]["url"] == "https://x"

    request.stream_options.include_usage = True
    chunks = [c async for c in router.stub.StreamChatCompletion(request, metadata=router.md())]
    content = [c for c in chunks if c.choices]
    assert {c.extra_fields["obfuscation"] for c in content} == {"x1"}
    assert [c.choices[0].delta.extra_fields["future_delta"] for c in content] == list(
        range(len(content)))
    assert chunks[-1].usage.total_tokens == 18 and not chunks[-1].choices


async def test_typed_stream_failing_midway_ends_with_the_real_status(router):
    request = gateway_pb2.ChatCompletionRequest(
        model="stall-stream", messages=[gateway_pb2.ChatMessage(role="user")])
    request.messages[0].content.string_value = "hi"
    call = router.stub.StreamChatCompletion(request, metadata=router.md())
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for chunk in call:
            received.append(chunk)
    assert received  # the error came after the first chunk
    # The provider stalled: a timeout (504), not a generic 502 rebuilt from our own SSE bytes.
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert dict(info.value.trailing_metadata())["x-http-status"] == "504"
