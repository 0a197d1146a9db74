"""The Bedrock codec: OpenAI requests translated into Converse requests that botocore's
bedrock-runtime service model and Bedrock's own rules accept (the fake's validator), signed with
SigV4 the fake verifies; answers and event streams back in OpenAI's shapes; errors mapped."""

from __future__ import annotations

import asyncio
import base64
import datetime

import orjson
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from switchboard_common import errors

from switchboard_router.codecs import aws_auth, bedrock
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.codecs.bedrock_stream import BedrockRelay
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from tests.fakes import bedrock_fake as fake
from tests.fakes import bedrock_wire as wire

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
DEP = Deployment(route="bedrock/*", name="bedrock/*", provider="bedrock", model=None, weight=1,
                 timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}


def _call(body: dict, *, include_usage: bool = False) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": f"bedrock/{MODEL}", **body}, model=f"bedrock/{MODEL}",
                upstream_model=MODEL, deployment=DEP, request_id="r1", include_usage=include_usage)


def _sent(body: dict) -> dict:
    """The translated request, after the fake accepted it as Bedrock would."""
    out = bedrock.translate_request(_call(body))
    wire.validate("ConverseStream" if body.get("stream") else "Converse", MODEL, orjson.loads(orjson.dumps(out)))
    return out


def _spec(**kw) -> ProviderSpec:
    base = dict(name="bedrock", type="bedrock", base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
                api_key="", headers={}, stream_usage=True, owned_by="bedrock", enabled=True,
                key_env="AWS_BEARER_TOKEN_BEDROCK", timeout_seconds=None, read_timeout_seconds=None,
                connect_timeout_seconds=None, region="us-east-1")
    return ProviderSpec(**{**base, **kw})


def _signed_codec(resolve=lambda: Credentials(fake.ACCESS_KEY, fake.SECRET_KEY)) -> bedrock.BedrockCodec:
    return bedrock.BedrockCodec(_spec().base_url, aws_auth.SigV4("us-east-1", resolve), {})


def test_sigv4_signs_each_request_as_botocore_verifies_it_with_the_model_id_encoded():
    codec = _signed_codec()
    asyncio.run(codec.authorize())
    request = codec.request(_call({"messages": [{"role": "user", "content": "hi"}]}))
    assert request.url == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                           "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")
    assert request.headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={fake.ACCESS_KEY}/") and "/us-east-1/bedrock/aws4_request" in \
        request.headers["Authorization"]
    headers = {**request.headers, "Host": "bedrock-runtime.us-east-1.amazonaws.com"}
    creds = {fake.ACCESS_KEY: fake.SECRET_KEY}
    assert wire.verify_sigv4(request.url, headers, request.body, creds, "us-east-1") is None
    assert wire.verify_sigv4(request.url, headers, request.body + b" ", creds, "us-east-1") is not None
    stream = codec.request(_call({"messages": [{"role": "user", "content": "hi"}], "stream": True}))
    assert stream.url.endswith("v1%3A0/converse-stream")


def test_a_bedrock_api_key_is_a_bearer_token():
    codec = bedrock.codec(_spec(api_key="bedrock-key"))
    request = codec.request(_call({"messages": [{"role": "user", "content": "hi"}]}))
    assert request.headers["Authorization"] == "Bearer bedrock-key"
    assert "X-Amz-Date" not in request.headers


def test_credentials_resolve_off_the_loop_once_and_refresh_when_expiring():
    calls = []

    def refresh():
        calls.append(1)
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            minutes=5 if len(calls) == 1 else 60)  # the first expires within botocore's window
        return {"access_key": fake.ACCESS_KEY, "secret_key": fake.SECRET_KEY, "token": f"t{len(calls)}",
                "expiry_time": expiry.isoformat()}

    source = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    resolved = []
    codec = _signed_codec(lambda: resolved.append(1) or source)

    async def main():
        await asyncio.gather(*(codec.authorize() for _ in range(5)))
        first = codec.request(_call({"messages": [{"role": "user", "content": "x"}]}))
        await codec.authorize()
        return first

    first = asyncio.run(main())
    assert len(resolved) == 1
    assert first.headers["X-Amz-Security-Token"] == "t2"  # refreshed before its first use
    assert len(calls) == 2


def test_no_credentials_is_a_clear_error():
    codec = _signed_codec(lambda: None)
    with pytest.raises(errors.UpstreamError) as info:
        asyncio.run(codec.authorize())
    assert "AWS_ACCESS_KEY_ID" in info.value.message


def test_system_roles_merged_blank_text_dropped_and_user_first():
    sent = _sent({"messages": [
        {"role": "system", "content": "Be terse."}, {"role": "developer", "content": [{"type": "text", "text": "  "}]},
        {"role": "user", "content": "one"}, {"role": "user", "content": [{"type": "text", "text": "two"},
                                                                          {"type": "text", "text": " "}]},
        {"role": "assistant", "content": ""}, {"role": "assistant", "content": "three"},
        {"role": "user", "content": "four"}],
        "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "stop": "END", "user": "u-1"})
    assert sent["system"] == [{"text": "Be terse."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
                                {"role": "assistant", "content": [{"text": "three"}]},
                                {"role": "user", "content": [{"text": "four"}]}]
    assert sent["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}
    assert sent["requestMetadata"] == {"user": "u-1"}
    with pytest.raises(errors.InvalidRequest) as info:
        _sent({"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]})
    assert info.value.param == "messages[0].role"
    with pytest.raises(errors.InvalidRequest) as info:
        _sent({"messages": [{"role": "user", "content": "   "}]})
    assert info.value.param == "messages[0].content"


def test_parallel_tool_round_trip_merges_results_and_keeps_tool_config():
    history = [{"role": "user", "content": "call_tools"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                   {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
               {"role": "tool", "tool_call_id": "call_2", "content": ""}]
    sent = _sent({"messages": history, "tools": [WEATHER, TIME], "tool_choice": "required"})
    assert sent["messages"][1]["content"][0] == {"toolUse": {"toolUseId": "call_1", "name": "weather",
                                                             "input": {"city": "Paris"}}}
    results = sent["messages"][2]["content"]
    assert [r["toolResult"]["toolUseId"] for r in results] == ["call_1", "call_2"]
    assert results[0]["toolResult"]["content"] == [{"text": "sunny"}]
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"]] == ["weather", "time"]
    # The next turn offers no tools, but the history has tool blocks: toolConfig is still sent.
    later = _sent({"messages": [*history, {"role": "assistant", "content": "done"},
                                {"role": "user", "content": "thanks"}]})
    assert [t["toolSpec"]["name"] for t in later["toolConfig"]["tools"]] == ["weather", "time"]
    assert "toolChoice" not in later["toolConfig"]


def test_what_converse_cannot_express_is_refused():
    base = {"messages": [{"role": "user", "content": "x"}]}
    cases = [({"tools": [WEATHER], "tool_choice": "none"}, "tool_choice"),
             ({"tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
             ({"logprobs": True}, "logprobs"), ({"n": 2}, "n"),
             ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
                 "url": "https://example.com/cat.png"}}]}]}, "messages[0].content[0].image_url.url"),
             ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
               "tools": [WEATHER]}, "response_format")]
    for extra, param in cases:
        with pytest.raises(errors.InvalidRequest) as info:
            bedrock.translate_request(_call({**base, **extra}))
        assert info.value.param == param, extra
    with pytest.raises(errors.InvalidRequest) as info:
        bedrock.translate_request(_call({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}))
    assert "not URLs" in info.value.message


def test_images_go_as_base64_bytes():
    sent = _sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]})
    assert sent["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": PNG}}}


def test_json_schema_is_a_forced_tool_whose_input_is_the_answer():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {"messages": [{"role": "user", "content": "as json"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}}}
    sent = _sent(body)
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "weather"}}
    content, stop = wire.answer(sent, lambda: "tooluse_1", fake._MARKER)
    answer = orjson.dumps({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                           "usage": wire.usage(sent, content, orjson.dumps), "metrics": {"latencyMs": 1}})
    reply = bedrock.codec(_spec(api_key="k")).response(_call(body), answer)
    choice = ChatCompletion.model_validate(orjson.loads(reply.data)).choices[0]
    assert orjson.loads(choice.message.content) == {"city": "fake"} and choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    events = wire.stream_events(content, stop, wire.usage(sent, content, orjson.dumps), orjson.dumps)
    chunks = _chunks(BedrockRelay(MODEL, "weather", False, len), events)
    assert orjson.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == {"city": "fake"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
    ("model_context_window_exceeded", "length")])
def test_stop_reasons(stop, finish):
    body = orjson.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
                         "stopReason": stop, "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                         "metrics": {"latencyMs": 1}})
    reply = bedrock.codec(_spec(api_key="k")).response(_call({"messages": []}), body)
    assert orjson.loads(reply.data)["choices"][0]["finish_reason"] == finish


def test_usage_counts_cache_reads_and_writes_once():
    usage = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 35, "cacheReadInputTokens": 12,
             "cacheWriteInputTokens": 8}
    body = orjson.dumps({"output": {"message": {"role": "assistant", "content": [
        {"text": "a"}, {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "x"}}},
        {"toolUse": {"toolUseId": "t2", "name": "time", "input": {}}}]}},
        "stopReason": "tool_use", "usage": usage, "metrics": {"latencyMs": 1}})
    reply = bedrock.codec(_spec(api_key="k")).response(_call({"messages": []}), body)
    answer = ChatCompletion.model_validate(orjson.loads(reply.data))
    assert (reply.usage.prompt, reply.usage.completion, reply.usage.cached, reply.usage.cache_write) == (30, 5, 12, 8)
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (30, 35)
    assert answer.usage.prompt_tokens_details.cached_tokens == 12
    calls = answer.choices[0].message.tool_calls
    assert [(c.id, c.function.name) for c in calls] == [("t1", "weather"), ("t2", "time")]


def _chunks(relay: BedrockRelay, events: list[bytes], slice_size: int = 7) -> list[ChatCompletionChunk]:
    blob = b"".join(events)
    out = b"".join(relay.feed(blob[i:i + slice_size]) for i in range(0, len(blob), slice_size)) + relay.finish()
    assert out.endswith(b"data: [DONE]\n\n")
    return [ChatCompletionChunk.model_validate_json(line[6:]) for line in out.split(b"\n\n")
            if line.startswith(b"data: {")]


def test_a_stream_in_awkward_slices_with_parallel_tool_calls_and_usage():
    content = [{"text": "Let me check."},
               {"toolUse": {"toolUseId": "tooluse_a", "name": "weather", "input": {"city": "fake"}}},
               {"toolUse": {"toolUseId": "tooluse_b", "name": "time", "input": {"zone": "fake"}}}]
    use = {"inputTokens": 4, "outputTokens": 9, "totalTokens": 13, "cacheReadInputTokens": 2}
    relay = BedrockRelay(MODEL, None, True, len)
    chunks = _chunks(relay, wire.stream_events(content, "tool_use", use, orjson.dumps))
    assert len({c.id for c in chunks}) == 1
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or ()) if c.choices else ():
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
            entry["arguments"] += tc.function.arguments or ""
    assert [(calls[i]["id"], calls[i]["name"], orjson.loads(calls[i]["arguments"])) for i in (0, 1)] == [
        ("tooluse_a", "weather", {"city": "fake"}), ("tooluse_b", "time", {"zone": "fake"})]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Let me check."
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 6
    assert (relay.usage.prompt, relay.usage.completion, relay.usage.cached) == (6, 9, 2)
    assert relay.error is None


def test_an_exception_frame_after_the_200_ends_the_stream_with_its_error():
    relay = BedrockRelay(MODEL, None, False, len)
    events = wire.stream_events([{"text": "a b c"}], "end_turn", {"inputTokens": 1, "outputTokens": 3,
                                                                  "totalTokens": 4}, orjson.dumps)
    out = relay.feed(b"".join(events[:2]))
    assert b'"content":"a"' in out and relay.error is None
    out = relay.feed(wire.exception("throttlingException", b'{"message":"slow down"}'))
    assert isinstance(relay.error, errors.RateLimited) and b"slow down" in out
    relay = BedrockRelay(MODEL, None, False, len)
    relay.feed(events[0] + wire.exception("serviceUnavailableException", b'{"message":"busy"}'))
    assert isinstance(relay.error, ProviderOverloaded)


def test_a_cut_or_corrupt_stream_is_an_error():
    events = wire.stream_events([{"text": "a b"}], "end_turn", {"inputTokens": 1, "outputTokens": 2,
                                                                "totalTokens": 3}, orjson.dumps)
    relay = BedrockRelay(MODEL, None, False, len)
    relay.feed(b"".join(events[:2]))
    assert b"ended the stream" in relay.finish() and relay.error is not None
    corrupt = bytearray(events[1])
    corrupt[-6] ^= 0xFF
    relay = BedrockRelay(MODEL, None, False, len)
    assert b"corrupt" in relay.feed(events[0] + bytes(corrupt))
    assert relay.error.code == "invalid_upstream_response"


@pytest.mark.parametrize(("status", "kind", "seen"), [
    (400, errors.InvalidRequest, 400), (403, errors.UpstreamError, 502), (404, errors.NotFound, 404),
    (408, errors.UpstreamTimeout, 504), (424, errors.UpstreamError, 502), (429, errors.RateLimited, 429),
    (500, errors.UpstreamError, 502), (503, ProviderOverloaded, 503)])
def test_errors_map_by_status_with_the_message(status, kind, seen):
    error = bedrock.map_error(status, b'{"message":"what bedrock said"}', "3")
    assert isinstance(error, kind) and error.http_status == seen
    if status in (400, 404, 429, 503):
        assert error.message == "what bedrock said"
    if status == 429:
        assert error.retry_after == 3


def _embed_call(model: str, **body) -> Call:
    return Call(endpoint=Endpoint.EMBEDDINGS, body={"model": f"bedrock/{model}", **body}, model=f"bedrock/{model}",
                upstream_model=model, deployment=DEP, request_id="r1")


def test_embeddings_on_titan_and_cohere_through_invoke_model():
    import struct

    codec = bedrock.codec(_spec(api_key="k"))
    titan = _embed_call("amazon.titan-embed-text-v2:0", input="hello there", dimensions=256,
                        encoding_format="base64")
    request = codec.request(titan)
    assert request.url.endswith("/model/amazon.titan-embed-text-v2%3A0/invoke")
    answer = wire.embed("amazon.titan-embed-text-v2:0", request.body, "application/json", None)
    reply = codec.response(titan, orjson.dumps(answer))
    data = orjson.loads(reply.data)
    vector = struct.unpack("<256f", base64.b64decode(data["data"][0]["embedding"]))
    assert list(vector) == answer["embedding"] and (reply.usage.prompt, data["usage"]["prompt_tokens"]) == (2, 2)
    cohere = _embed_call("cohere.embed-english-v3", input=["a", "b c"])
    request = codec.request(cohere)
    answer = wire.embed("cohere.embed-english-v3", request.body, "application/json", "*/*")
    data = orjson.loads(codec.response(cohere, orjson.dumps(answer)).data)
    assert [d["index"] for d in data["data"]] == [0, 1] and len(data["data"][1]["embedding"]) == 1024
    for call, param in ((_embed_call("amazon.titan-embed-text-v2:0", input=["a", "b"]), "input"),
                        (_embed_call("amazon.titan-embed-text-v2:0", input="a", dimensions=300), "dimensions"),
                        (_embed_call("cohere.embed-english-v3", input="a", dimensions=256), "dimensions"),
                        (_embed_call("amazon.titan-embed-text-v2:0", input=[[1, 2]]), "input"),
                        (_embed_call("meta.llama3-8b-instruct-v1:0", input="a"), "model")):
        with pytest.raises(errors.InvalidRequest) as info:
            codec.request(call)
        assert info.value.param == param


def test_reasoning_effort_is_claudes_thinking_and_its_reasoning_comes_back():
    sent = _sent({"reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]})
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert sent["inferenceConfig"]["maxTokens"] > 1024
    content, stop = wire.answer(orjson.loads(orjson.dumps(sent)), lambda: "t", fake._MARKER)
    use = wire.usage(sent, content, orjson.dumps)
    codec = bedrock.codec(_spec(api_key="k"))
    call = _call({"reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]})
    reply = codec.response(call, orjson.dumps({"output": {"message": {"role": "assistant", "content": content}},
                                               "stopReason": stop, "usage": use}))
    message = ChatCompletion.model_validate_json(reply.data).choices[0].message
    assert message.reasoning_content == wire.THOUGHT and message.content == "Echo: think"
    chunks = _chunks(BedrockRelay(MODEL, None, True, len), wire.stream_events(content, stop, use, orjson.dumps))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == wire.THOUGHT
    assert "".join(d.content or "" for d in deltas) == "Echo: think"
    assert _sent({"reasoning_effort": "none", "messages": [{"role": "user", "content": "x"}]}).get(
        "additionalModelRequestFields") is None
    for body, model in (({"reasoning_effort": "high", "max_tokens": 2000}, MODEL),
                        ({"reasoning_effort": "low"}, "amazon.nova-lite-v1:0"),
                        ({"reasoning_effort": "low", "tools": [WEATHER], "tool_choice": "required"}, MODEL),
                        ({"reasoning_effort": "low", "response_format": {"type": "json_object"}}, MODEL)):
        call = _call({**body, "messages": [{"role": "user", "content": "x"}]})
        call.upstream_model = model
        with pytest.raises(errors.InvalidRequest) as info:
            bedrock.translate_request(call)
        assert info.value.param in ("reasoning_effort", "max_completion_tokens"), body


def test_count_tokens_is_bedrocks_count_tokens_on_the_invoke_model_body():
    codec = _signed_codec()
    asyncio.run(codec.authorize())
    body = {"messages": [{"role": "user", "content": "count these four words"}], "system": "Be terse.",
            "thinking": {"type": "enabled", "budget_tokens": 2048}}
    url, headers, data = codec.count_request(body, MODEL, ("token-counting-2024-11-01",))
    assert url.endswith("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/count-tokens")
    assert wire.verify_sigv4(url, headers, data, {fake.ACCESS_KEY: fake.SECRET_KEY}, "us-east-1") is None
    from tests.fakes import bedrock_anthropic

    sent = orjson.loads(data)
    invoke = orjson.loads(base64.b64decode(sent["input"]["invokeModel"]["body"]))
    assert invoke["anthropic_beta"] == ["token-counting-2024-11-01"] and invoke["max_tokens"] > 2048
    count = bedrock_anthropic.count(MODEL, sent)  # the fake's check: botocore's shape, Anthropic's rules
    assert codec.count_answer(orjson.dumps({"inputTokens": count})) == orjson.dumps({"input_tokens": count})
    with pytest.raises(errors.UpstreamError):
        codec.count_answer(b'{"tokens": 3}')
    url, _, _ = codec.count_request(body, "us." + MODEL, ())  # a cross-region profile's foundation model
    assert "/model/anthropic.claude-3-5-haiku" in url
