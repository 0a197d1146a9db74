"""The Gemini codec: OpenAI requests translated into requests Gemini's own protos accept (checked
by the fake's validator: the google-ai-generativelanguage GenerateContentRequest, unknown fields
refused, plus the API's semantic rules), answers and streams back in OpenAI's shapes (the
openai SDK's types parse them), errors mapped."""

from __future__ import annotations

import base64

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from switchboard_common import errors

from switchboard_router.codecs import gemini as codec
from switchboard_router.codecs.gemini_request import translate_request
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from tests.fakes import gemini_fake as fake

DEP = Deployment(route="m", name="gemini/m", provider="gemini", model=None, weight=1,
                 timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"],
                                                "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}
USAGE = {"promptTokenCount": 120, "cachedContentTokenCount": 100, "candidatesTokenCount": 7,
         "thoughtsTokenCount": 5, "totalTokenCount": 132}


def _call(body: dict, *, model: str = "gemini-2.5-flash", include_usage: bool = False) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": "gemini/x", **body}, model="gemini/x",
                upstream_model=model, deployment=DEP, request_id="r1", include_usage=include_usage)


def _sent(body: dict, version: str = "v1beta") -> dict:
    """The translated request, after the fake accepted it as Gemini would."""
    out = translate_request(_call(body), version)
    fake.validate(orjson.loads(orjson.dumps(out)), version)
    return out


def _spec(**kw) -> ProviderSpec:
    return ProviderSpec(name="gemini", type="gemini", base_url="https://generativelanguage.googleapis.com",
                        api_key="AIza-secret", headers={}, stream_usage=True, owned_by="google",
                        enabled=True, key_env="GEMINI_API_KEY", timeout_seconds=None,
                        read_timeout_seconds=None, connect_timeout_seconds=None, **kw)


def test_url_key_header_and_version():
    gem = codec.codec(_spec())
    url, headers, _ = gem.request(_call({"messages": [{"role": "user", "content": "hi"}]}))
    assert url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert headers["x-goog-api-key"] == "AIza-secret" and "Authorization" not in headers
    url, _, _ = codec.codec(_spec(api_version="v1")).request(
        _call({"messages": [{"role": "user", "content": "hi"}], "stream": True}))
    assert url.endswith("/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse")


def test_roles_system_instruction_and_generation_config():
    out = _sent({"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Mind."}]},
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"},
        {"role": "assistant", "content": "ok"}, {"role": "user", "content": "three"}],
        "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stop": "END", "seed": 3})
    assert out["systemInstruction"] == {"parts": [{"text": "Be terse."}, {"text": "Mind."}]}
    assert [(c["role"], len(c["parts"])) for c in out["contents"]] == [("user", 2), ("model", 1), ("user", 1)]
    assert out["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2, "topP": 0.9,
                                       "stopSequences": ["END"], "seed": 3}


def test_parallel_tool_calls_round_trip_with_thought_signature():
    sig = fake.signature("weather")
    history = [
        {"role": "user", "content": "call_tools"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_sbaaa", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
             "extra_content": {"google": {"thought_signature": sig}}},
            {"id": "gem-id-2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_sbaaa", "content": "sunny"},
        {"role": "tool", "tool_call_id": "gem-id-2", "content": "noon"}]
    out = _sent({"messages": history, "tools": [WEATHER, TIME], "tool_choice": "auto"})
    model_turn, results = out["contents"][1], out["contents"][2]
    assert model_turn["parts"][0] == {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
                                      "thoughtSignature": sig}
    # Gemini's own id goes back; a synthetic one does not
    assert model_turn["parts"][1] == {"functionCall": {"name": "time", "args": {}, "id": "gem-id-2"}}
    assert results == {"role": "user", "parts": [
        {"functionResponse": {"name": "weather", "response": {"result": "sunny"}}},
        {"functionResponse": {"name": "time", "response": {"result": "noon"}, "id": "gem-id-2"}}]}
    assert out["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == WEATHER["function"]["parameters"]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert fake.answer(out)[0] == [{"text": "Echo: sunny | noon"}]
    strict = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}
    plain = [{"role": "user", "content": "x"}]
    assert _sent({"messages": plain, "tools": [strict]})["toolConfig"] == {
        "functionCallingConfig": {"mode": "VALIDATED"}}
    assert _sent({"messages": plain, "tools": [strict], "tool_choice": {"type": "function", "function": {
        "name": "weather"}}})["toolConfig"] == {"functionCallingConfig": {"mode": "ANY",
                                                                          "allowedFunctionNames": ["weather"]}}
    # without the signature Gemini refuses the history (the fake as Gemini 3 does)
    del history[1]["tool_calls"][0]["extra_content"]
    with pytest.raises(fake.Refusal, match="thought_signature"):
        _sent({"messages": history, "tools": [WEATHER, TIME]})


def test_images_json_modes_and_thinking():
    out = _sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?x=1"}}]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {
            "type": "object", "properties": {"c": {"type": "number"}}, "additionalProperties": False}}},
        "reasoning_effort": "low"})
    parts = out["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg?x=1"}}
    config = out["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"]["type"] == "object"
    assert config["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    assert _sent({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})[
        "generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(("body", "param"), [
    ({"logprobs": True}, "logprobs"),
    ({"n": 2}, "n"),
    ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"user": "u1"}, "user"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "https://example.com/picture"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
])
def test_what_gemini_cannot_express_is_refused(body, param):
    with pytest.raises(errors.InvalidRequest) as info:
        translate_request(_call({"messages": [{"role": "user", "content": "x"}], **body}))
    assert info.value.param == param and info.value.http_status == 400


def test_v1_refuses_what_its_types_lack():
    assert _sent({"messages": [{"role": "user", "content": "hi"}], "temperature": 1}, "v1")["contents"]
    with pytest.raises(errors.InvalidRequest, match="v1beta") as info:
        translate_request(_call({"messages": [{"role": "system", "content": "s"},
                                                    {"role": "user", "content": "x"}]}), "v1")
    assert info.value.param == "messages"
    with pytest.raises(errors.InvalidRequest, match="v1beta"):
        translate_request(_call({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]}), "v1")


def test_the_fake_rejects_what_gemini_would():
    with pytest.raises(fake.Refusal, match="max_tokens"):  # the proto knows no such field
        fake.validate({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "generationConfig": {"max_tokens": 5}})
    with pytest.raises(fake.Refusal, match="role"):  # the proto takes any role string; Gemini does not
        fake.validate({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})
    with pytest.raises(fake.Refusal, match="function response"):
        fake.validate({"contents": [{"role": "user", "parts": [{"text": "x"}]}, {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": fake.signature("f")}]},
            {"role": "user", "parts": [{"text": "no result"}]}]})
    with pytest.raises(fake.Refusal, match=r"systemInstruction|system_instruction"):  # not in v1's types
        fake.validate({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "systemInstruction": {"parts": [{"text": "s"}]}}, "v1")


def test_whole_answer_tool_calls_get_unique_ids_and_stop_becomes_tool_calls():
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "thinking", "thought": True}, {"text": "Let me check."},
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "weather", "args": {"city": "Rome"}}}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}
    gem = codec.codec(_spec())
    first = ChatCompletion.model_validate(orjson.loads(gem.response(_call({}), orjson.dumps(answer)).data))
    second = ChatCompletion.model_validate(orjson.loads(gem.response(_call({}), orjson.dumps(answer)).data))
    choice = first.choices[0]
    assert first.id == "resp-1" and choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check." and choice.message.model_extra["reasoning_content"] == "thinking"
    calls = choice.message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("weather", '{"city":"Paris"}'), ("weather", '{"city":"Rome"}')]
    ids = {c.id for c in calls} | {c.id for c in second.choices[0].message.tool_calls}
    assert len(ids) == 4  # unique per call, across answers too
    assert calls[0].model_extra["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert "extra_content" not in calls[1].model_extra
    # cached tokens are part of promptTokenCount: counted once; thoughts are completion tokens
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (120, 12, 132)
    assert first.usage.prompt_tokens_details.cached_tokens == 100
    assert first.usage.completion_tokens_details.reasoning_tokens == 5
    reply = gem.response(_call({}), orjson.dumps(answer))
    assert (reply.usage.prompt, reply.usage.completion, reply.usage.cached, reply.usage.reasoning) == (120, 12, 100, 5)
    with pytest.raises(errors.UpstreamError):
        gem.response(_call({}), b'{"error": {}}')


@pytest.mark.parametrize(("reason", "finish"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("OTHER", "stop")])
def test_finish_reasons(reason, finish):
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert codec.to_chat_completion(answer, "m")["choices"][0]["finish_reason"] == finish


def test_a_blocked_prompt_and_a_failed_tool_call():
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3,
                                                                              "totalTokenCount": 3}}
    out = codec.to_chat_completion(blocked, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter" and out["choices"][0]["message"]["content"] == ""
    with pytest.raises(errors.UpstreamError, match="MALFORMED_FUNCTION_CALL"):
        codec.to_chat_completion({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}, "m")


def _relay(include_usage: bool = False) -> codec.GeminiRelay:
    return codec.GeminiRelay("gemini-2.5-flash", forward_usage=include_usage, count=lambda t: len(t.split()))


def _chunks(data: bytes) -> list[ChatCompletionChunk]:
    out = []
    for block in data.split(b"\n\n"):
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            out.append(ChatCompletionChunk.model_validate(orjson.loads(block[6:])))
    return out


def _stream(parts: list[dict], finish: str = "STOP", response_id: str = "r-s") -> bytes:
    use = {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
    return b"".join(fake.sse_frame(f) for f in fake.stream_frames(parts, finish, use, "gemini-2.5-flash", response_id))


def test_stream_of_text_split_anywhere_gives_the_same_chunks():
    events = _stream([{"text": "Hello there world"}])
    whole = _relay(include_usage=True)
    out = whole.feed(events) + whole.finish()
    pieces = _relay(include_usage=True)
    split = b"".join(pieces.feed(events[i:i + 7]) for i in range(0, len(events), 7)) + pieces.finish()
    assert out == split and out.endswith(b"data: [DONE]\n\n")
    chunks = _chunks(out)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 3)
    assert (whole.usage.prompt, whole.usage.completion) == (4, 3) and whole.completion_tokens() == 3
    assert {c.id for c in chunks} == {"r-s"} and whole.error is None
    early = _relay()
    early.feed(events[:events.index(b"\r\n\r\n") + 4])  # the first frame: the prompt's count only
    assert early.usage is None and early.completion_tokens() == 1  # counted from the text so far
    hidden = _relay()
    assert b'"usage"' not in hidden.feed(events) + hidden.finish() and hidden.usage is not None


def test_stream_of_parallel_calls_numbers_them_and_the_late_stop_is_tool_calls():
    parts = [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
             {"functionCall": {"name": "time", "args": {}}}]
    relay = _relay()
    chunks = _chunks(relay.feed(_stream(parts)) + relay.finish())
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.function.name, tc.function.arguments) for tc in calls] == [
        (0, "weather", '{"city":"Paris"}'), (1, "time", "{}")]
    assert len({tc.id for tc in calls}) == 2
    assert calls[0].model_extra["extra_content"]["google"]["thought_signature"] == "c2ln"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_concurrent_streams_do_not_share_state():
    a, b = _relay(), _relay()
    ea = fake.stream_frames([{"functionCall": {"name": "f", "args": {}}}], "STOP",
                            {"promptTokenCount": 1, "totalTokenCount": 1}, "m", "ra")
    eb = fake.stream_frames([{"text": "plain words"}], "STOP", {"promptTokenCount": 1, "totalTokenCount": 1}, "m", "rb")
    out_a, out_b = b"", b""
    for i in range(max(len(ea), len(eb))):
        out_a += a.feed(fake.sse_frame(ea[i])) if i < len(ea) else b""
        out_b += b.feed(fake.sse_frame(eb[i])) if i < len(eb) else b""
    out_a, out_b = out_a + a.finish(), out_b + b.finish()
    assert {c.id for c in _chunks(out_a)} == {"ra"} and {c.id for c in _chunks(out_b)} == {"rb"}
    assert b"tool_calls" not in out_b and b'"finish_reason":"tool_calls"' in out_a


def test_error_frame_after_200_a_cut_stream_and_a_blocked_prompt():
    relay = _relay()
    frames = fake.stream_frames([{"text": "a b c"}], "STOP", {"promptTokenCount": 1, "totalTokenCount": 1}, "m", "r")
    out = relay.feed(fake.sse_frame(frames[0]) + fake.sse_frame(
        {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}))
    assert isinstance(relay.error, ProviderOverloaded)
    assert orjson.loads(out.split(b"\n\n")[-2][6:])["error"]["type"] == "service_unavailable"
    assert relay.finish() == b""  # no [DONE] after an error
    cut = _relay()
    cut.feed(fake.sse_frame(frames[0]))
    tail = cut.finish()
    assert isinstance(cut.error, errors.UpstreamError) and b'"error"' in tail and b"[DONE]" not in tail
    blocked = _relay()
    frame = fake.sse_frame({"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "rb"})
    out = blocked.feed(frame) + blocked.finish()
    assert [c.choices[0].finish_reason for c in _chunks(out) if c.choices][-1] == "content_filter"


@pytest.mark.parametrize(("status", "name", "kind", "http", "retry"), [
    (400, "INVALID_ARGUMENT", errors.InvalidRequest, 400, None),
    (401, "UNAUTHENTICATED", errors.UpstreamError, 502, None),
    (403, "PERMISSION_DENIED", errors.UpstreamError, 502, None),
    (404, "NOT_FOUND", errors.NotFound, 404, None),
    (429, "RESOURCE_EXHAUSTED", errors.RateLimited, 429, 7),
    (500, "INTERNAL", errors.UpstreamError, 502, None),
    (503, "UNAVAILABLE", ProviderOverloaded, 503, None),
    (504, "DEADLINE_EXCEEDED", errors.UpstreamTimeout, 504, None),
])
def test_errors(status, name, kind, http, retry):
    details = fake.quota_details() if status == 429 else None
    err = codec.map_error(status, fake.error_body(status, "msg AIza-123", details))
    assert type(err) is kind and err.http_status == http and err.retry_after == retry
    if status in (401, 403):
        assert "AIza" not in err.message
    if status == 400:
        assert err.message == "msg AIza-123"
    # Vertex's array form reads the same; a Retry-After header wins over the body's RetryInfo
    assert type(codec.map_error(status, fake.error_body(status, "m", details, array=True))) is kind
    if status == 429:
        assert codec.map_error(status, fake.error_body(status, "m", details), "30").retry_after == 30


def test_an_invalid_key_is_the_gateways_problem_not_the_clients():
    body = fake.error_body(400, "API key not valid. AIza-123", [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                                "reason": "API_KEY_INVALID"}])
    err = codec.map_error(400, body)
    assert err.http_status == 502 and "AIza" not in err.message


def _embed_call(model: str = "gemini-embedding-001", **body) -> Call:
    return Call(endpoint=Endpoint.EMBEDDINGS, body={"model": f"gemini/{model}", **body}, model=f"gemini/{model}",
                upstream_model=model, deployment=DEP, request_id="r1")


def test_embeddings_one_text_by_embed_content_several_by_batch_with_the_fakes_protos():
    import struct

    from openai.types import CreateEmbeddingResponse

    from tests.fakes import gemini_embeddings

    gemini = codec.codec(_spec())
    one = _embed_call(input="hello there", dimensions=256, encoding_format="base64")
    url, headers, body = gemini.request(one)
    assert url.endswith("/v1beta/models/gemini-embedding-001:embedContent") and headers["x-goog-api-key"]
    answer = gemini_embeddings.gemini_answer("gemini-embedding-001", "embedContent", "v1beta", orjson.loads(body))
    reply = gemini.response(one, orjson.dumps(answer))
    data = orjson.loads(reply.data)
    assert list(struct.unpack("<256f", base64.b64decode(data["data"][0]["embedding"]))) == \
        answer["embedding"]["values"]
    assert reply.usage is None and "usage" not in data  # Gemini counts none: the gateway counts
    many = _embed_call(input=["a", "b c"], encoding_format="float")
    url, _, body = gemini.request(many)
    assert url.endswith(":batchEmbedContents")
    answer = gemini_embeddings.gemini_answer("gemini-embedding-001", "batchEmbedContents", "v1beta",
                                             orjson.loads(body))
    data = orjson.loads(gemini.response(many, orjson.dumps(answer)).data)
    CreateEmbeddingResponse.model_validate({**data, "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    assert [d["index"] for d in data["data"]] == [0, 1] and len(data["data"][1]["embedding"]) == 3072
    assert data["data"][1]["embedding"] == gemini_embeddings.vector("b c", 3072)
    for bad, param in (({"input": [[1, 2]]}, "input"), ({"input": "a", "user": "u"}, "user"),
                       ({"input": "a", "dimensions": 0}, "dimensions"), ({"input": ["a"] * 101}, "input"),
                       ({"input": "a", "encoding_format": "int8"}, "encoding_format")):
        with pytest.raises(errors.InvalidRequest) as info:
            gemini.request(_embed_call(**bad))
        assert info.value.param == param
    with pytest.raises(errors.UpstreamError):
        gemini.response(many, b'{"embeddings": [{"values": "nope"}]}')
