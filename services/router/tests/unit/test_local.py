"""The built-in local model: OpenAI's exact shapes, real token counts, max_tokens, n, embeddings."""

from __future__ import annotations

import base64
import math
import struct

import orjson

from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.providers.base import Call
from switchboard_router.providers.local import LocalProvider

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
