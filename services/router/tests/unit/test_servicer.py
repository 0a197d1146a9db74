"""Metadata and typed messages into the gateway's domain and back: the key, how long the caller
waits, typed request -> JSON, JSON answers -> typed messages with nothing dropped."""

from __future__ import annotations

import pytest
from switchboard.gateway.v1 import gateway_pb2
from switchboard_common.errors import UpstreamError

from switchboard_router import typed
from switchboard_router.servicer import request_context, typed_body


class Context:
    def __init__(self, *metadata: tuple[str, str], time_remaining: float | None = None) -> None:
        self._metadata = metadata
        self._time_remaining = time_remaining

    def invocation_metadata(self):
        return self._metadata

    def time_remaining(self):
        return self._time_remaining


def test_key_from_bearer_then_anthropic_and_azure_headers():
    assert request_context(Context(("authorization", "Bearer sk-1"))).key == "sk-1"
    assert request_context(Context(("authorization", "bearer  sk-2 "))).key == "sk-2"
    assert request_context(Context(("x-api-key", "sk-3"))).key == "sk-3"
    assert request_context(Context(("api-key", "sk-4"))).key == "sk-4"
    both = Context(("x-api-key", "sk-other"), ("authorization", "Bearer sk-main"))
    assert request_context(both).key == "sk-main"
    assert request_context(Context(("authorization", "Basic abc"))).key is None
    assert request_context(Context()).key is None


def test_typed_request_becomes_the_openai_body():
    request = gateway_pb2.ChatCompletionRequest(model="m", seed=42, max_tokens=5, n=2,
                                                messages=[gateway_pb2.ChatMessage(role="user")])
    request.messages[0].content.string_value = "hi"
    request.stop.list_value.values.add().string_value = "END"
    request.stream_options.include_usage = True
    request.extra_body.update({"future_param": {"a": 1}})
    body = typed_body(request)
    assert body == {"model": "m", "seed": 42, "max_tokens": 5, "n": 2, "stop": ["END"],
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream_options": {"include_usage": True}, "future_param": {"a": 1}}


def test_how_long_the_caller_waits():
    assert request_context(Context()).grpc_timeout is None
    assert request_context(Context()).sdk_timeout is None
    assert request_context(Context(time_remaining=4.5)).grpc_timeout == 4.5
    # The Node SDK's x-stainless-timeout and the Python SDK's x-stainless-read-timeout, in seconds.
    assert request_context(Context(("x-stainless-timeout", "600"))).sdk_timeout == 600
    both = Context(("x-stainless-read-timeout", "30.0"), ("x-stainless-timeout", "600"))
    assert request_context(both).sdk_timeout == 30
    for junk in ("soon", "0", "-5", "inf", "nan", ""):
        assert request_context(Context(("x-stainless-timeout", junk))).sdk_timeout is None, junk


def test_typed_request_tool_calls_keep_their_extra_fields():
    request = gateway_pb2.ChatCompletionRequest(model="m")
    message = request.messages.add(role="assistant")
    call = message.tool_calls.add(id="call_1", type="function")
    call.function.name = "f"
    call.function.arguments = "{}"
    call.extra_fields.update({"future": 1})
    tool = request.tools.add(type="function")
    tool.function.name = "f"
    # A schema property named like our field is the client's data, not ours.
    tool.function.parameters.update({"properties": {"extra_fields": {"type": "string"}}})
    body = typed_body(request)
    assert body["messages"][0]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"},
         "future": 1}]
    assert body["tools"][0]["function"]["parameters"] == {
        "properties": {"extra_fields": {"type": "string"}}}


CHUNK = {
    "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1721172741, "model": "m",
    "service_tier": "default", "system_fingerprint": None, "obfuscation": "aZ3",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": None, "future_choice": True,
                 "delta": {"content": "hi", "role": "assistant", "audio": {"id": "a1"},
                           "tool_calls": [{"index": 0, "id": "c", "type": "function",
                                           "function": {"name": "f", "arguments": "",
                                                        "future_fn": [1, 2]}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
              "prompt_tokens_details": {"cached_tokens": 0}, "future_usage": 5},
}


def test_answers_become_typed_messages_with_unknown_fields_kept_where_they_were():
    chunk = typed.to_message(CHUNK, gateway_pb2.ChatCompletionChunk)
    assert (chunk.id, chunk.created, chunk.model) == ("chatcmpl-1", 1721172741, "m")
    assert not chunk.HasField("system_fingerprint")  # null is absent
    assert dict(chunk.extra_fields) == {"service_tier": "default", "obfuscation": "aZ3"}
    choice = chunk.choices[0]
    assert choice.delta.content == "hi" and dict(choice.extra_fields) == {"future_choice": True}
    assert dict(choice.delta.extra_fields["audio"]) == {"id": "a1"}
    function = choice.delta.tool_calls[0].function
    assert function.name == "f" and list(function.extra_fields["future_fn"]) == [1, 2]
    assert chunk.usage.total_tokens == 7 and chunk.usage.extra_fields["future_usage"] == 5
    # And back: the same JSON, less the nulls (which proto3 cannot tell from absent).
    back = typed.to_json(chunk)
    assert back["obfuscation"] == "aZ3" and back["choices"][0]["delta"]["audio"] == {"id": "a1"}
    assert back["usage"]["future_usage"] == 5


def test_an_answer_that_does_not_fit_the_types_is_an_upstream_error():
    with pytest.raises(UpstreamError, match="ChatCompletion"):
        typed.to_message({"id": "x", "created": "yesterday"}, gateway_pb2.ChatCompletion)


def test_the_cache_headers_are_read_as_sent():
    ctx = request_context(Context(("x-switchboard-cache", "On"), ("cache-control", "no-cache")))
    assert (ctx.cache_switch, ctx.cache_control) == ("On", "no-cache")
    ctx = request_context(Context())
    assert (ctx.cache_switch, ctx.cache_control) == (None, None)


class _BrokenInbound:
    """An inbound route that fails as code can: an ApiError, or a bug."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def count_message_tokens(self, ctx, data):
        raise self.error

    async def messages(self, ctx, data):
        raise self.error
        yield  # pragma: no cover - an async generator


@pytest.mark.parametrize("error", [UpstreamError("the provider failed"), KeyError("a bug")],
                         ids=["api-error", "unexpected"])
async def test_every_error_of_v1_messages_leaves_in_anthropics_shape(error):
    from google.api import httpbody_pb2
    from switchboard_common.errors import ApiError

    from switchboard_router.servicer import GatewayServicer

    servicer = GatewayServicer(None, None, None, inbound=_BrokenInbound(error))  # type: ignore[arg-type]
    request = httpbody_pb2.HttpBody(data=b"{}")
    for call in (lambda: servicer.CountMessageTokens(request, Context()),
                 lambda: anext(servicer.Messages(request, Context()))):
        with pytest.raises(ApiError) as raised:
            await call()
        assert raised.value.shape == "anthropic"
        assert dict(raised.value.trailing_metadata())["x-error-shape"] == "anthropic"
        assert raised.value.http_status == (502 if isinstance(error, ApiError) else 500)
