"""/v1/messages passed through: the client's body kept as sent (and refused where unknown), the
provider's answer and stream kept byte for byte but the model name, the usage (cache reads and
writes) read from them, errors in Anthropic's shape and status. (The output guardrails reading
Anthropic's own stream: test_guarding.py.)"""

from __future__ import annotations

import orjson
import pytest
from anthropic.types import Message
from switchboard_common.errors import InvalidRequest, RateLimited, UpstreamError

from switchboard_router.codecs import anthropic, anthropic_native, bedrock_native
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.codecs.sse import SseDecoder, encode
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.inbound import native
from switchboard_router.inbound.serve import anthropic_shaped
from switchboard_router.providers.base import Call
from tests.fakes import anthropic_fake, bedrock_anthropic, bedrock_wire

SYSTEM = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
TOOL = {"name": "read", "description": "Read a file", "cache_control": {"type": "ephemeral"},
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
THINKING = {"type": "thinking", "thinking": "Let me look.", "signature": "c2lnbmF0dXJl"}


def body(**extra) -> dict:
    return {"model": "claude", "max_tokens": 2048, "system": SYSTEM, "tools": [TOOL],
            "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "user", "content": "read a.py"},
                {"role": "assistant", "content": [
                    THINKING, {"type": "tool_use", "id": "toolu_1", "name": "read",
                               "input": {"path": "a.py"}, "caller": None}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)",
                     "cache_control": {"type": "ephemeral"}}]}], **extra}


def test_the_clients_body_is_kept_and_the_gateway_reads_a_chat_view_of_it():
    sent = body(top_k=5)
    read = native.read(sent)
    assistant = {**sent["messages"][1], "content": [THINKING, {
        "type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.py"}}]}
    # As sent, but the SDK's null fields (Anthropic's types have none)
    assert read.body == {**sent, "messages": [sent["messages"][0], assistant, sent["messages"][2]]}
    assert read.only == "thinking"  # what only an Anthropic-format deployment can take
    chat = read.chat
    assert "thinking" not in chat and "top_k" not in chat
    assert chat["messages"][0] == {"role": "system", "content": "You are Claude Code."}
    assert chat["messages"][2]["tool_calls"][0]["function"]["name"] == "read"
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "print(1)"}
    assert native.read({**sent, "thinking": {"type": "disabled"}}).only == "top_k"
    plain = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert native.read(plain) == (native.read(plain).chat, plain, "")


@pytest.mark.parametrize("change, param", [
    ({"speed": "fast"}, "speed"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": "on"}, "thinking"),
    ({"messages": [{"role": "user", "content": [THINKING]}]}, "messages.0.content.0"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "no signature"}]}]}, "messages.1.content.0"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "colour": 1}]}]},
     "messages.0.content.0.colour"),
])
def test_what_the_gateway_does_not_know_is_refused_natively_too(change, param):
    with pytest.raises(InvalidRequest) as err:
        native.read({**body(), **change})
    assert err.value.param == param


def test_count_tokens_takes_no_sampling_fields():
    count = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "system": SYSTEM,
             "thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert native.read(count, counting=True).body == count
    with pytest.raises(InvalidRequest) as err:
        native.read({**count, "top_k": 3}, counting=True)
    assert err.value.param == "top_k"


def test_only_documented_betas_are_passed_and_headers_are_split():
    sent = native.split_betas(["prompt-caching-2024-07-31, claude-code-20250219",
                               "interleaved-thinking-2025-05-14"])
    assert sent == ("prompt-caching-2024-07-31", "claude-code-20250219",
                    "interleaved-thinking-2025-05-14")
    assert native.betas(sent) == ("prompt-caching-2024-07-31", "interleaved-thinking-2025-05-14")


def _codec() -> anthropic.AnthropicCodec:
    return anthropic.codec(ProviderSpec(
        name="anthropic", type="anthropic", base_url="http://fake", api_key="sk-ant", headers={},
        stream_usage=True, owned_by="anthropic", enabled=True, key_env=None, timeout_seconds=None,
        read_timeout_seconds=None, connect_timeout_seconds=None))


def _call(sent: dict, **kw) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={}, model="claude", upstream_model="claude-sonnet-4-5",
                deployment=None, request_id="r", native=sent, **kw)  # type: ignore[arg-type]


def test_the_provider_is_sent_the_clients_body_with_its_model_name_and_betas():
    sent = native.read(body()).body
    url, headers, data = _codec().request(_call(sent, betas=("prompt-caching-2024-07-31",)))
    assert url == "http://fake/v1/messages"
    assert orjson.loads(data) == {**sent, "model": "claude-sonnet-4-5"}
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert headers["x-api-key"] == "sk-ant"
    url, headers, data = _codec().count_request({"model": "claude", "messages": []}, "up", ())
    assert url == "http://fake/v1/messages/count_tokens" and "anthropic-beta" not in headers
    assert orjson.loads(data) == {"model": "up", "messages": []}


def _message(sent: dict) -> dict:
    content, stop = anthropic_fake.answer(sent, iter(["toolu_9"]))
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": anthropic_fake.usage(sent, content, write=True)}


def test_a_whole_answer_comes_back_as_sent_but_the_model_with_its_cache_counts():
    sent = {**native.read(body()).body, "model": "claude-sonnet-4-5"}
    raw = orjson.dumps(_message(sent))
    reply = _codec().response(_call(sent), raw)
    assert reply.data == raw.replace(b'"model":"claude-sonnet-4-5"', b'"model":"claude"')
    message = Message.model_validate_json(reply.data)
    assert message.content[0].type == "thinking" and message.content[0].signature == "c2lnbmF0dXJl"
    assert reply.usage is not None
    assert (reply.usage.cached, reply.usage.cache_write) == (0, message.usage.cache_creation_input_tokens)
    assert reply.usage.cache_write > 0
    assert reply.usage.prompt == message.usage.input_tokens + reply.usage.cache_write
    with pytest.raises(UpstreamError):
        _codec().response(_call(sent), b'{"type":"error"}')


def test_a_stream_goes_out_byte_for_byte_but_the_model_and_its_usage_is_read():
    sent = {**native.read(body()).body, "model": "claude-sonnet-4-5", "stream": True}
    message = _message(sent)
    raw = b"".join(anthropic_fake.stream_events(message, error_event=False))
    relay = _codec().relay(_call(sent), lambda text: len(text.split()))
    out = b"".join(relay.feed(raw[i:i + 7]) for i in range(0, len(raw), 7)) + relay.finish()
    assert out == raw.replace(b'"model":"claude-sonnet-4-5"', b'"model":"claude"', 1)
    assert b"signature_delta" in out and b"thinking_delta" in out
    assert relay.error is None and relay.usage is not None
    assert relay.usage.completion == message["usage"]["output_tokens"]
    assert relay.usage.cache_write == message["usage"]["cache_creation_input_tokens"] > 0
    assert relay.completion_tokens() == message["usage"]["output_tokens"]


def test_a_streams_errors_are_read_and_a_cut_stream_ends_with_anthropics_error_event():
    sent = {"model": "m", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "one two three"}]}
    message = _message(sent)
    events = anthropic_fake.stream_events(message, error_event=True)
    relay = anthropic_native.NativeRelay("claude-sonnet-4-5", len)
    assert relay.feed(b"".join(events)) == b"".join(events)
    assert isinstance(relay.error, ProviderOverloaded)

    cut = anthropic_native.NativeRelay("m", len)
    cut.feed(b"".join(events[:3]))
    tail = cut.finish()
    assert isinstance(cut.error, UpstreamError)
    assert tail.startswith(b"event: error\ndata: ") and b'"type":"api_error"' in tail


def test_an_error_the_gateway_raises_midway_becomes_anthropics_error_event():
    text = encode(b'{"type":"ping"}', "ping")
    error = encode(orjson.dumps(ProviderOverloaded("busy").to_openai()))
    assert native.Errors.feed(text) is text
    out = native.Errors.feed(text + error)
    assert out.startswith(text)
    assert out[len(text):] == encode(orjson.dumps({"type": "error", "error": {
        "type": "overloaded_error", "message": "busy"}}), "error")


def test_an_overloaded_provider_is_anthropics_529_on_this_route():
    error = anthropic_shaped(ProviderOverloaded("Overloaded"))
    metadata = dict(error.trailing_metadata())
    assert metadata["x-http-status"] == "529" and metadata["x-error-shape"] == "anthropic"
    assert anthropic.map_error(529, anthropic_fake.error_body(529, "Overloaded")).http_status == 503
    assert ProviderOverloaded("x").http_status == 503  # unchanged on OpenAI's routes


def test_bedrocks_anthropic_models_take_the_body_through_invoke_model():
    sent = native.read(body(top_k=3)).body
    call = Call(endpoint=Endpoint.CHAT, body={}, model="claude", deployment=None,  # type: ignore[arg-type]
                upstream_model="us.anthropic.claude-sonnet-4-5-v1:0", request_id="r",
                native={**sent, "stream": True}, betas=("context-1m-2025-08-07",))
    assert bedrock_native.speaks_messages(call.upstream_model)
    assert not bedrock_native.speaks_messages("amazon.nova-pro-v1:0")
    assert bedrock_native.action(call) == "invoke-with-response-stream"
    assert orjson.loads(bedrock_native.body(call)) == {
        **{k: v for k, v in sent.items() if k != "model"}, "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["context-1m-2025-08-07"]}


def test_bedrocks_chunks_go_out_as_anthropics_events_and_its_exceptions_as_error_events():
    sent = {**native.read(body()).body, "model": "claude-sonnet-4-5"}
    message = _message(sent)
    frames = bedrock_anthropic.chunks(message)
    relay = bedrock_native.BedrockNativeRelay("claude", len)
    raw = b"".join(frames)
    out = b"".join(relay.feed(raw[i:i + 50]) for i in range(0, len(raw), 50)) + relay.finish()
    events = list(SseDecoder().feed(out))
    assert [e.event for e in events] == [orjson.loads(e.data)["type"] for e in events]
    assert orjson.loads(events[0].data)["message"]["model"] == "claude"
    assert b'"signature_delta"' in out and b"amazon-bedrock-invocationMetrics" in out
    assert relay.error is None and relay.usage.completion == message["usage"]["output_tokens"]

    cut = bedrock_native.BedrockNativeRelay("claude", len)
    throttled = bedrock_wire.exception("throttlingException", b'{"message":"Too many tokens"}')
    tail = cut.feed(b"".join(frames[:3]) + throttled)
    assert isinstance(cut.error, RateLimited)
    assert tail.endswith(encode(b'{"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens"}}',
                                "error"))
