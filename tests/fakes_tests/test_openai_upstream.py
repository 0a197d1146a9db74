"""The fake OpenAI API, driven by the official `openai` SDK: shapes, usage, errors and hooks."""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.fakes.openai_upstream import run_fake_in_thread, start_fake

pytestmark = pytest.mark.timeout(60)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def fake():
    with run_fake_in_thread(api_keys=["sk-test", "sk-other"]) as handle:
        yield handle


@pytest.fixture
def client(fake):
    fake.requests.clear()
    return openai.OpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0, timeout=10)


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def test_chat_echoes_the_last_user_message_with_openai_shape_and_usage(client, fake):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ask("hello there"))

    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini" and isinstance(reply.created, int)
    assert reply.service_tier == "default" and reply.system_fingerprint.startswith("fp_")
    [choice] = reply.choices
    assert (choice.index, choice.finish_reason, choice.logprobs) == (0, "stop", None)
    assert choice.message.role == "assistant" and choice.message.content == "Echo: hello there"
    assert choice.message.refusal is None and choice.message.annotations == []
    # Words: "You are terse." + "hello there" in, "Echo: hello there" out.
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) \
        == (5, 3, 8)
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    [seen] = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.json["messages"][1]["content"] == "hello there"


def test_chat_stream_with_usage_sends_openai_chunks_then_done(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("one two three"), stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)

    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    first, *middle, finish, last = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == ["Echo:", " one", " two", " three"]
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert all(c.usage is None for c in chunks[:-1])
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) \
        == (6, 4, 10)


def test_stream_bytes_end_with_done_and_carry_usage_null(fake):
    body = {"model": "gpt-4o-mini", "messages": ask("hi"), "stream": True,
            "stream_options": {"include_usage": True}}
    r = httpx.post(f"{fake.base_url}/chat/completions", json=body,
                   headers={"Authorization": "Bearer sk-test"})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = r.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    first = orjson.loads(events[0].removeprefix("data: "))
    assert list(first) == ["id", "object", "created", "model", "service_tier",
                           "system_fingerprint", "choices", "usage"]
    assert first["usage"] is None
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}


def test_max_tokens_truncates_with_finish_reason_length(client):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ask("a b c d e"),
                                           max_tokens=3)
    assert reply.choices[0].message.content == "Echo: a b"
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3


def test_tools_and_call_tool_give_a_tool_call(client):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ask("please call_tool"),
                                           tools=[WEATHER_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "fake", "days": 1, "unit": "celsius"}


def test_streamed_tool_call_reassembles_to_the_same_call(client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=ask("call_tool now"),
                                            tools=[WEATHER_TOOL], stream=True)
    chunks = list(stream)
    head = chunks[0].choices[0].delta.tool_calls[0]
    assert head.function.name == "get_weather" and head.function.arguments == ""
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments
                        for c in chunks[1:-1])
    assert orjson.loads(arguments)["city"] == "fake"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings_are_deterministic_unit_vectors_in_float_and_base64(client, fake):
    floats = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"],
                                      encoding_format="float")
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])

    assert fake.requests[-1].json["encoding_format"] == "base64"  # the SDK's default
    assert floats.object == "list" and floats.model == "text-embedding-3-small"
    assert [d.index for d in floats.data] == [0, 1]
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)
    for f, d in zip(floats.data, decoded.data, strict=True):
        assert len(f.embedding) == 8
        assert math.isclose(sum(x * x for x in f.embedding), 1.0, rel_tol=1e-5)
        assert d.embedding == pytest.approx(f.embedding, abs=1e-6)
    assert floats.data[0].embedding != floats.data[1].embedding
    wider = client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=16)
    assert len(wider.data[0].embedding) == 16


def test_embeddings_base64_is_little_endian_float32(fake):
    r = httpx.post(f"{fake.base_url}/embeddings", headers={"Authorization": "Bearer sk-test"},
                   json={"model": "text-embedding-3-small", "input": [1, 2, 3],
                         "encoding_format": "base64"})
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    assert len(struct.unpack("<8f", raw)) == 8 and r.json()["usage"]["prompt_tokens"] == 3


def test_models_list_and_retrieve(client):
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o",
                                                    "text-embedding-3-small"]
    assert client.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("gpt-9")
    assert err.value.code == "model_not_found"


def test_legacy_completions_plain_and_streamed(client):
    reply = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this")
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text == "Echo: say this" and reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this",
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: say this"
    assert chunks[-1].usage.total_tokens == 5


@pytest.mark.parametrize(("change", "param", "code"), [
    ({"temperature": 3}, "temperature", "decimal_above_max_value"),
    ({"messages": []}, "messages", "empty_array"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"n": "2"}, "n", "invalid_type"),
    ({"stream": "yes"}, "stream", "invalid_type"),
    ({"stream_options": {"include_usage": True}}, "stream_options", None),
])
def test_invalid_requests_are_400_naming_the_param(client, change, param, code):
    args = {"model": "gpt-4o-mini", "messages": ask("hi"), **change}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**args)
    assert err.value.status_code == 400
    assert (err.value.param, err.value.code, err.value.type) == (param, code,
                                                                 "invalid_request_error")


def test_unknown_arguments_are_rejected_like_openai_does(client):
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: x_"):
        client.chat.completions.create(model="gpt-4o-mini", messages=ask("hi"),
                                       extra_body={"x_gateway": 1})


def test_wrong_and_missing_keys_are_401(fake):
    wrong = openai.OpenAI(api_key="sk-wrong-key-123", base_url=fake.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.models.list()
    assert err.value.code == "invalid_api_key" and "sk-*********-123" in err.value.message
    r = httpx.get(f"{fake.base_url}/models")
    assert r.status_code == 401 and "didn't provide an API key" in r.json()["error"]["message"]


@pytest.mark.parametrize(("hook", "error", "status"), [
    ({"extra_headers": {"x-fake-behavior": "error-429"}}, openai.RateLimitError, 429),
    ({"model": "gpt-4o-mini+error-500"}, openai.InternalServerError, 500),
    ({"messages": ask("[fake:error-503] hi")}, openai.InternalServerError, 503),
])
def test_error_hooks_from_header_model_suffix_and_marker(client, hook, error, status):
    args = {"model": "gpt-4o-mini", "messages": ask("hi"), **hook}
    with pytest.raises(error) as err:
        client.chat.completions.create(**args)
    assert err.value.status_code == status
    if status == 429:
        assert err.value.response.headers["retry-after"] == "1"
        assert err.value.code == "rate_limit_exceeded"


def test_slow_hook_delays_each_stream_event(client):
    start = time.perf_counter()
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("a b"), stream=True,
        extra_headers={"x-fake-behavior": "slow-50"}))
    # 50 ms before the headers, then between the 6 events ([DONE] included).
    assert time.perf_counter() - start >= 0.25 and len(chunks) == 5


def test_hang_hook_times_out(client):
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model="gpt-4o-mini+hang", messages=ask("hi"))


def test_abort_mid_stream_breaks_the_stream_after_two_chunks(client):
    received = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=ask("a b c d"), stream=True,
                extra_headers={"x-fake-behavior": "abort-mid-stream"}):
            received.append(chunk)
    assert len(received) == 2


def test_size_hook_streams_a_big_answer_in_openai_chunks_with_its_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("one two three"), stream=True,
        stream_options={"include_usage": True}, extra_headers={"x-fake-behavior": "size-400000"})
    text, chunks, usage = [], 0, None
    for chunk in stream:
        chunks += 1
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    joined = "".join(text)
    assert joined.startswith("Echo: one two threeEcho: one") and chunks > 400_000 // 400
    assert usage.completion_tokens == len([t for t in text if t])  # one word a chunk, all counted
    with pytest.raises(openai.BadRequestError, match="size-<bytes>"):
        client.chat.completions.create(model="gpt-4o-mini+size-100", messages=ask("hi"))


def test_tag_hook_logs_how_the_request_ended(client, fake):
    logged = f"{fake.url}/_fake/requests"
    assert httpx.get(f"{logged}/never-sent").status_code == 404
    client.chat.completions.create(model="gpt-4o-mini+tag-done-1", messages=ask("hi"))
    done = httpx.get(f"{logged}/done-1").json()
    assert done["outcome"] == "completed" and done["bytes_sent"] > 0
    assert done["started_at"] <= done["ended_at"]
    # A client that leaves mid-stream is noticed within a poll of 10 ms, not at the stream's end.
    with httpx.stream("POST", f"{fake.base_url}/chat/completions",
                      headers={"authorization": "Bearer sk-test"},
                      json={"model": "gpt-4o-mini", "stream": True, "messages": ask(
                          " ".join(["w"] * 100) + " [fake:slow-100,tag-left-1]")}) as resp:
        next(resp.iter_bytes())
        left = time.time()
    for _ in range(100):
        seen = httpx.get(f"{logged}/left-1").json()
        if seen["outcome"] != "running":
            break
        time.sleep(0.02)
    assert seen["outcome"] == "client_closed" and seen["ended_at"] - left < 0.5


def test_context_too_long_hook_is_openais_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini+context-too-long", messages=ask("hi"))
    assert info.value.code == "context_length_exceeded" and info.value.param == "messages"


def test_unknown_hook_is_a_loud_400(client):
    with pytest.raises(openai.BadRequestError, match="Unknown fake behavior 'eror-429'"):
        client.chat.completions.create(model="gpt-4o-mini", messages=ask("hi"),
                                       extra_headers={"x-fake-behavior": "eror-429"})


@pytest.mark.asyncio
async def test_async_fake_with_async_client_streams():
    async with await start_fake() as fake:
        client = openai.AsyncOpenAI(api_key="sk-anything", base_url=fake.base_url, max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o", messages=ask("async"),
                                                      stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        await client.close()
    assert text == "Echo: async"
    assert fake.requests[0].json["stream"] is True


def test_runs_as_a_script_and_writes_its_port(tmp_path: Path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", "0",
         "--port-file", str(port_file)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        line = proc.stdout.readline().strip()
        port = int(port_file.read_text())
        assert line == f"listening on http://127.0.0.1:{port}"
        reply = openai.OpenAI(api_key="sk-x", base_url=f"http://127.0.0.1:{port}/v1") \
            .chat.completions.create(model="gpt-4o-mini", messages=ask("script"))
        assert reply.choices[0].message.content == "Echo: script"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
