"""The Anthropic codec: OpenAI requests translated into requests Anthropic's own types accept
(checked by the fake's validator: the anthropic SDK's TypedDicts, extra fields forbidden, plus the
API's semantic rules), answers and streams back in OpenAI's shapes, errors mapped."""

from __future__ import annotations

import base64

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from switchboard_common import errors

from switchboard_router.codecs import anthropic as codec
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from tests.fakes import anthropic_fake as fake

DEP = Deployment(route="m", name="anthropic/m", provider="anthropic", model=None, weight=1,
                 timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}


def _call(body: dict, *, model: str = "claude-sonnet-4-5", include_usage: bool = False) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": "anthropic/x", **body}, model="anthropic/x",
                upstream_model=model, deployment=DEP, request_id="r1", include_usage=include_usage)


def _sent(body: dict, **kw) -> dict:
    """The translated request, after the fake accepted it as Anthropic would."""
    out = codec.translate_request(_call(body, **kw))
    fake.validate(orjson.loads(orjson.dumps(out)))
    return out


def _spec(**kw) -> ProviderSpec:
    return ProviderSpec(name="anthropic", type="anthropic", base_url="https://api.anthropic.com",
                        api_key="sk-ant-secret", headers={}, stream_usage=True, owned_by="anthropic",
                        enabled=True, key_env="ANTHROPIC_API_KEY", timeout_seconds=None,
                        read_timeout_seconds=None, connect_timeout_seconds=None, **kw)


def test_headers_url_and_version():
    request = codec.codec(_spec(api_version="2023-06-01", auth_header="x-api-key")).request(
        _call({"messages": [{"role": "user", "content": "hi"}]}))
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-secret"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in request.headers
    bearer = codec.codec(_spec(auth_header="authorization")).request(
        _call({"messages": [{"role": "user", "content": "hi"}]}))
    assert bearer.headers["Authorization"] == "Bearer sk-ant-secret"
    assert bearer.headers["anthropic-version"] == codec.DEFAULT_VERSION


def test_system_prompts_roles_and_max_tokens_default():
    sent = _sent({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"},
        {"role": "assistant", "content": ""},  # nothing to carry: dropped, the users merge
        {"role": "user", "content": [{"type": "text", "text": "three"}]}],
        "stop": "END", "user": "u-1",
        "session_id": "s", "stream": True, "stream_options": {"include_usage": True}})
    assert sent["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use French."}]
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "one"}, {"type": "text", "text": "two"}, {"type": "text", "text": "three"}]}]
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-1"} and sent["stream"] is True
    assert sent["max_tokens"] == 64000  # claude-sonnet-4-5's output limit
    assert "session_id" not in sent and "stream_options" not in sent
    one = _sent({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}],
                 "max_completion_tokens": 50}, model="claude-3-5-haiku-latest")
    assert one["system"] == "S" and one["max_tokens"] == 50
    assert codec.default_max_tokens("claude-3-5-haiku-latest") == 8192
    assert codec.default_max_tokens("some-new-model") == codec.FALLBACK_MAX_TOKENS


def test_parallel_tool_calls_and_merged_results_keep_their_ids():
    sent = _sent({"tools": [WEATHER, TIME], "tool_choice": "required", "parallel_tool_calls": True,
                  "messages": [
                      {"role": "user", "content": "call_tools please"},
                      {"role": "assistant", "content": "Looking.", "tool_calls": [
                          {"id": "call_a", "type": "function",
                           "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                          {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": ""}}]},
                      {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
                      {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
                      {"role": "user", "content": "thanks"}]})
    assert sent["tools"][0] == {"name": "weather", "description": "Weather of a city",
                                "input_schema": WEATHER["function"]["parameters"]}
    assert sent["tool_choice"] == {"type": "any"}
    assistant, results = sent["messages"][1], sent["messages"][2]
    assert assistant["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "time", "input": {}}]
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_a", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
        {"type": "text", "text": "thanks"}]}
    assert _sent({"tools": [WEATHER], "parallel_tool_calls": False,
                  "messages": [{"role": "user", "content": "x"}]})["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}
    assert _sent({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}},
                  "messages": [{"role": "user", "content": "x"}]})["tool_choice"] == {"type": "tool", "name": "weather"}


def test_images_documents_json_schema_and_thinking():
    sent = _sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PNG}", "filename": "a.pdf"}}]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}},
        "reasoning_effort": "low", "max_tokens": 2000})
    blocks = sent["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert blocks[2] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    assert blocks[3]["type"] == "document" and blocks[3]["title"] == "a.pdf"
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    high = _sent({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"},
                 model="claude-3-7-sonnet-latest")
    assert high["thinking"]["budget_tokens"] == 16384 and high["max_tokens"] == 64000
    old = _sent({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"},
                model="claude-3-5-sonnet-latest")  # its default 8192 would leave no room
    assert old["max_tokens"] == 16384 + codec.FALLBACK_MAX_TOKENS


@pytest.mark.parametrize(("body", "param"), [
    ({"logprobs": True}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"n": 2}, "n"),
    ({"temperature": 0.5}, "temperature"),  # not in the Messages API's types any more
    ({"top_p": 0.5}, "top_p"),
    ({"response_format": {"type": "json_object"}}, "response_format.type"),
    ({"reasoning_effort": "high", "max_tokens": 100}, "max_completion_tokens"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/bmp;base64,AAAA"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "x", "name": "alice"}]}, "messages[0].name"),
])
def test_what_anthropic_cannot_express_is_refused(body, param):
    with pytest.raises(errors.InvalidRequest) as info:
        codec.translate_request(_call({"messages": [{"role": "user", "content": "x"}], **body}))
    assert info.value.param == param and info.value.http_status == 400


def test_the_fake_rejects_what_anthropic_would():
    with pytest.raises(fake.Refusal, match="Field required"):  # OpenAI's part shape is not Anthropic's
        fake.validate({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x"}}]}]})
    with pytest.raises(fake.Refusal, match="tool_result"):
        fake.validate({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}]})
    with pytest.raises(fake.Refusal, match="alternate"):
        fake.validate({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})


def test_whole_answer_with_tools_thinking_and_cached_usage():
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                           {"type": "text", "text": "Let me check."},
                           {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                           {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}],
               "stop_reason": "tool_use", "stop_sequence": None,
               "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
                         "cache_creation_input_tokens": 5, "output_tokens": 7}}
    reply = codec.AnthropicCodec("http://x", {}).response(_call({}), orjson.dumps(message))
    answer = ChatCompletion.model_validate(orjson.loads(reply.data))
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    assert [(t.id, t.function.name, t.function.arguments) for t in choice.message.tool_calls] == [
        ("toolu_1", "weather", '{"city":"Paris"}'), ("toolu_2", "time", "{}")]
    assert choice.message.model_extra["reasoning_content"] == "hmm"
    # 10 uncached + 100 read + 5 written, each once; 100 of them cached
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (115, 7, 122)
    assert answer.usage.prompt_tokens_details.cached_tokens == 100
    assert (reply.usage.prompt, reply.usage.completion, reply.usage.cached, reply.usage.cache_write) == (
        115, 7, 100, 5)
    with pytest.raises(errors.UpstreamError):
        codec.AnthropicCodec("http://x", {}).response(_call({}), b'{"type":"error"}')


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length")])
def test_stop_reasons(stop, finish):
    message = {"id": "m", "type": "message", "model": "c", "content": [{"type": "text", "text": "x"}],
               "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert codec.to_chat_completion(message)["choices"][0]["finish_reason"] == finish


def _message(content: list, stop: str = "end_turn") -> dict:
    return {"id": "msg_s", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 4, "cache_read_input_tokens": 6, "cache_creation_input_tokens": 0,
                      "output_tokens": 9}}


def _relay(include_usage: bool = False) -> codec.AnthropicRelay:
    return codec.AnthropicRelay(forward_usage=include_usage, count=lambda t: len(t.split()))


def _chunks(data: bytes) -> list[ChatCompletionChunk]:
    out = []
    for block in data.split(b"\n\n"):
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            out.append(ChatCompletionChunk.model_validate(orjson.loads(block[6:])))
    return out


def test_stream_of_text_split_anywhere_gives_the_same_chunks():
    events = b"".join(fake.stream_events(_message([{"type": "text", "text": "Hello there world"}]), False))
    whole = _relay(include_usage=True)
    out = whole.feed(events) + whole.finish()
    pieces = _relay(include_usage=True)
    split = b"".join(pieces.feed(events[i:i + 7]) for i in range(0, len(events), 7)) + pieces.finish()
    assert out == split and out.endswith(b"data: [DONE]\n\n")
    chunks = _chunks(out)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (10, 9)
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 6
    assert (whole.usage.prompt, whole.usage.completion) == (10, 9) and whole.completion_tokens() == 9
    assert len({c.id for c in chunks}) == 1 and whole.error is None
    hidden = _relay(include_usage=False)
    assert b'"usage"' not in hidden.feed(events) and hidden.usage is not None


def test_stream_of_parallel_tool_calls_numbers_them_from_zero():
    content = [{"type": "text", "text": "Checking."},
               {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
               {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {"zone": "UTC"}}]
    relay = _relay()
    chunks = _chunks(relay.feed(b"".join(fake.stream_events(_message(content, "tool_use"), False))))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = tc.id or entry["id"]
            entry["name"] = (tc.function.name if tc.function else None) or entry["name"]
            entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert calls == {0: {"id": "toolu_a", "name": "weather", "arguments": '{"city":"Paris"}'},
                     1: {"id": "toolu_b", "name": "time", "arguments": '{"zone":"UTC"}'}}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_concurrent_streams_do_not_share_state():
    a, b = _relay(), _relay()
    ea = fake.stream_events(_message([{"type": "tool_use", "id": "ta", "name": "f", "input": {}}], "tool_use"), False)
    eb = fake.stream_events({**_message([{"type": "text", "text": "plain"}]), "id": "msg_b"}, False)
    out_a, out_b = b"", b""
    for i in range(max(len(ea), len(eb))):
        out_a += a.feed(ea[i]) if i < len(ea) else b""
        out_b += b.feed(eb[i]) if i < len(eb) else b""
    assert {c.id for c in _chunks(out_a)} == {"msg_s"} and {c.id for c in _chunks(out_b)} == {"msg_b"}
    assert b"tool_calls" not in out_b and _chunks(out_a)[1].choices[0].delta.tool_calls[0].index == 0


def test_error_event_after_200_and_a_cut_stream():
    relay = _relay()
    out = relay.feed(b"".join(fake.stream_events(_message([{"type": "text", "text": "a b c"}]), True)))
    assert isinstance(relay.error, ProviderOverloaded) and relay.error.http_status == 503
    last = orjson.loads(out.split(b"\n\n")[-2][6:])
    assert last["error"]["type"] == "service_unavailable"
    assert relay.finish() == b""  # no [DONE] after an error
    cut = _relay()
    events = fake.stream_events(_message([{"type": "text", "text": "a b c"}]), False)
    cut.feed(b"".join(events[:4]))
    tail = cut.finish()
    assert isinstance(cut.error, errors.UpstreamError) and b'"error"' in tail and b"[DONE]" not in tail


def test_ping_and_padded_json_are_tolerated():
    relay = _relay()
    start = fake.stream_events(_message([]), False)[0]
    out = relay.feed(start + b"event: ping\ndata: {\"type\": \"ping\"}          \n\n")
    assert len(_chunks(out)) == 1


@pytest.mark.parametrize(("status", "kind", "body_type", "http", "retry"), [
    (400, errors.InvalidRequest, "invalid_request_error", 400, None),
    (401, errors.UpstreamError, "authentication_error", 502, None),
    (403, errors.UpstreamError, "permission_error", 502, None),
    (404, errors.NotFound, "not_found_error", 404, None),
    (413, errors.PayloadTooLarge, "request_too_large", 413, None),
    (429, errors.RateLimited, "rate_limit_error", 429, 7),
    (500, errors.UpstreamError, "api_error", 502, None),
    (529, ProviderOverloaded, "overloaded_error", 503, 7),
])
def test_errors(status, kind, body_type, http, retry):
    body = orjson.dumps({"type": "error", "error": {"type": body_type, "message": "msg sk-ant-123"}})
    err = codec.map_error(status, body, "7")
    assert type(err) is kind and err.http_status == http and err.retry_after == retry
    if status in (401, 403):
        assert "sk-ant" not in err.message
    if status == 400:
        assert err.message == "msg sk-ant-123"
    assert isinstance(ProviderOverloaded("x"), errors.UpstreamError)  # fails over like a 5xx
