"""Metadata and typed requests into the gateway's domain: where the key comes from, typed -> JSON."""

from __future__ import annotations

from switchboard.gateway.v1 import gateway_pb2

from switchboard_router.servicer import request_context, typed_body


class Context:
    def __init__(self, *metadata: tuple[str, str]) -> None:
        self._metadata = metadata

    def invocation_metadata(self):
        return self._metadata


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
