"""The built-in local model: OpenAI's exact shapes, real token counts, max_tokens, n, embeddings."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
import threading

import orjson
import pytest
from switchboard_common.errors import InvalidRequest

from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.providers.base import Call
from switchboard_router.providers.local import (
    FINGERPRINT,
    MAX_DIMENSIONS,
    MAX_FLOATS,
    MAX_INPUT_CHARS,
    MAX_OUTPUT_TOKENS,
    LocalProvider,
)

DEP = Deployment(route="switchboard-local", name="local/echo", provider="local", model="echo",
                 weight=1, timeout_seconds=1, read_timeout_seconds=1, connect_timeout_seconds=1)
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}]


def _call(body: dict, endpoint: Endpoint = Endpoint.CHAT, include_usage: bool = False) -> Call:
    return Call(endpoint=endpoint, body=body, model="switchboard-local", upstream_model="echo",
                deployment=DEP, request_id="abc", include_usage=include_usage)


def _provider(tokenizer) -> LocalProvider:
    return LocalProvider(tokenizer, clock=lambda: 1_700_000_000.5)


async def test_chat_completion_shape_and_tokens(tokenizer):
    reply = await _provider(tokenizer).send(_call({"messages": MESSAGES, "n": 2}))
    body = orjson.loads(reply.data)
    assert set(body) == {"id", "object", "created", "model", "choices", "usage", "service_tier",
                         "system_fingerprint"}
    assert (body["id"], body["object"], body["created"], body["model"]) == (
        "chatcmpl-abc", "chat.completion", 1_700_000_000, "switchboard-local")
    text = "You said: What is the capital of France?"
    assert [c["message"] for c in body["choices"]] == [
        {"role": "assistant", "content": text, "refusal": None, "annotations": []}] * 2
    assert [(c["index"], c["finish_reason"], c["logprobs"]) for c in body["choices"]] == [
        (0, "stop", None), (1, "stop", None)]
    usage = body["usage"]
    assert usage["prompt_tokens"] == tokenizer.count_chat("echo", MESSAGES)
    assert usage["completion_tokens"] == 2 * tokenizer.count("echo", text)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert (reply.usage.prompt, reply.usage.completion) == (usage["prompt_tokens"], usage["completion_tokens"])


async def test_max_tokens_cuts_the_answer(tokenizer):
    body = orjson.loads((await _provider(tokenizer).send(
        _call({"messages": MESSAGES, "max_tokens": 3}))).data)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert tokenizer.count("echo", body["choices"][0]["message"]["content"]) == 3


async def test_stream_chunks_and_the_usage_chunk(tokenizer):
    tally, pieces = _provider(tokenizer).stream(_call({"messages": MESSAGES, "stream": True},
                                                      include_usage=True))
    messages = [m async for m in pieces]
    assert len(messages) >= 4  # role, several content pieces, the end
    data = b"".join(messages)
    events = data.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    chunks = [orjson.loads(e[6:]) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-abc" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "You said: What is the capital of France?"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"] is None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == tally.usage.total

    _, pieces = _provider(tokenizer).stream(_call({"messages": MESSAGES, "stream": True}))
    plain = [orjson.loads(e[6:]) for e in b"".join([m async for m in pieces]).split(b"\n\n")[:-2]]
    assert all("usage" not in c for c in plain)


async def test_text_completion(tokenizer):
    reply = await _provider(tokenizer).send(_call({"prompt": ["one", "two"]}, Endpoint.COMPLETIONS))
    body = orjson.loads(reply.data)
    assert body["object"] == "text_completion" and body["id"] == "cmpl-abc"
    assert [(c["index"], c["text"]) for c in body["choices"]] == [(0, "You said: one"), (1, "You said: two")]
    _, pieces = _provider(tokenizer).stream(_call({"prompt": "hey", "stream": True}, Endpoint.COMPLETIONS))
    chunks = [orjson.loads(e[6:]) for e in b"".join([m async for m in pieces]).split(b"\n\n")[:-2]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "You said: hey"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_embeddings_are_deterministic_unit_vectors(tokenizer):
    provider = _provider(tokenizer)
    floats = orjson.loads((await provider.send(_call({"input": ["a", "b", "a"]}, Endpoint.EMBEDDINGS))).data)
    assert floats["object"] == "list" and floats["model"] == "switchboard-local"
    vectors = [d["embedding"] for d in floats["data"]]
    assert [len(v) for v in vectors] == [256] * 3
    assert vectors[0] == vectors[2] != vectors[1]
    assert math.isclose(math.sqrt(sum(x * x for x in vectors[0])), 1.0, rel_tol=1e-5)
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}

    encoded = orjson.loads((await provider.send(_call(
        {"input": "a", "encoding_format": "base64", "dimensions": 64}, Endpoint.EMBEDDINGS))).data)
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert len(raw) == 64 * 4  # float32 little-endian, as the openai SDK decodes it
    assert len(struct.unpack("<64f", raw)) == 64
    tokens = orjson.loads((await provider.send(_call({"input": [1, 2, 3]}, Endpoint.EMBEDDINGS))).data)
    assert len(tokens["data"]) == 1 and tokens["usage"]["prompt_tokens"] == 3


async def _refusal(provider: LocalProvider, call: Call) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        await provider.send(call)
    return info.value


@pytest.mark.parametrize(("body", "endpoint", "param"), [
    ({"messages": [{"role": "user", "content": "x" * (MAX_INPUT_CHARS + 1)}]}, Endpoint.CHAT,
     "messages"),
    ({"prompt": ["x" * MAX_INPUT_CHARS, "y"]}, Endpoint.COMPLETIONS, "prompt"),
    ({"input": [[1] * MAX_INPUT_CHARS, [2]]}, Endpoint.EMBEDDINGS, "input"),
])
async def test_inputs_past_the_context_are_refused_before_any_work(tokenizer, body, endpoint, param):
    counting = CountingTokenizer(tokenizer)
    err = await _refusal(LocalProvider(counting), _call(body, endpoint))
    assert (err.param, err.code, err.http_status) == (param, "context_length_exceeded", 400)
    assert str(MAX_INPUT_CHARS) in err.message
    assert counting.calls == []  # nothing was tokenized


async def test_a_stream_refuses_before_its_first_message(tokenizer):
    body = {"messages": [{"role": "user", "content": "x" * (MAX_INPUT_CHARS + 1)}], "stream": True}
    _, pieces = _provider(tokenizer).stream(_call(body))
    with pytest.raises(InvalidRequest):
        await anext(pieces)


async def test_choices_and_output_are_bounded(tokenizer):
    provider = _provider(tokenizer)
    err = await _refusal(provider, _call({"prompt": ["a", "b"], "n": 65}, Endpoint.COMPLETIONS))
    assert (err.param, err.code) == ("n", "invalid_value")
    long = " ".join(["word"] * (MAX_OUTPUT_TOKENS * 2))
    body = orjson.loads((await provider.send(_call({"messages": [{"role": "user", "content": long}],
                                                    "max_tokens": 10**6}))).data)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == MAX_OUTPUT_TOKENS


async def test_embeddings_are_bounded(tokenizer):
    provider = _provider(tokenizer)
    for body in ({"input": "x", "dimensions": MAX_DIMENSIONS + 1},
                 {"input": ["x"] * 512, "dimensions": 257}, {"input": ["x"] * 513}):
        err = await _refusal(provider, _call(body, Endpoint.EMBEDDINGS))
        assert (err.param, err.code) == ("dimensions", "invalid_value")
    reply = await provider.send(_call({"input": ["x"] * 512}, Endpoint.EMBEDDINGS))
    assert len(orjson.loads(reply.data)["data"]) == MAX_FLOATS // 256


async def test_a_large_batch_of_embeddings_lets_the_loop_run_while_it_is_built(tokenizer):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = ticks
    await _provider(tokenizer).send(_call({"input": [f"text {i}" for i in range(512)]},
                                          Endpoint.EMBEDDINGS))
    task.cancel()
    assert ticks - start >= 16  # it yielded to the loop between slices, not once at the end


async def test_large_prompts_are_tokenized_off_the_event_loop(tokenizer):
    counting = CountingTokenizer(tokenizer)
    text = "many words " * 20_000
    await LocalProvider(counting).send(_call({"messages": [{"role": "user", "content": text}]}))
    assert counting.calls and threading.get_ident() not in counting.calls


@pytest.mark.parametrize("prompt", [[200_000], [[1, 2], [1_000_000_000]]])
async def test_token_ids_outside_the_vocabulary_are_refused(tokenizer, prompt):
    err = await _refusal(_provider(tokenizer), _call({"prompt": prompt}, Endpoint.COMPLETIONS))
    assert err.code == "invalid_value" and err.param.startswith("prompt")  # was a 500


async def test_what_openai_accepts_the_local_model_answers(tokenizer):
    provider = _provider(tokenizer)
    body = orjson.loads((await provider.send(_call({"prompt": None}, Endpoint.COMPLETIONS))).data)
    assert body["choices"][0]["text"].startswith("Hello!")
    body = orjson.loads((await provider.send(_call({"prompt": "hi", "max_tokens": 0},
                                                   Endpoint.COMPLETIONS))).data)
    assert (body["choices"][0]["text"], body["choices"][0]["finish_reason"]) == ("", "length")
    body = orjson.loads((await provider.send(_call({"messages": MESSAGES, "n": 2.0}))).data)
    assert len(body["choices"]) == 2 and body["system_fingerprint"] == FINGERPRINT


class CountingTokenizer:
    """The real tokenizer, noting the thread of each call that tokenizes."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[int] = []

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in ("count", "count_chat", "count_inputs", "truncate"):
            return attr

        def noted(*args, **kwargs):
            self.calls.append(threading.get_ident())
            return attr(*args, **kwargs)
        return noted
