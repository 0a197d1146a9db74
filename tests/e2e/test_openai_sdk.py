"""The official openai SDK against the real stack: sync, async, streaming, models, embeddings."""

from __future__ import annotations

import asyncio

import openai
import pytest

LOCAL = "switchboard-local"
UPSTREAM = "gpt-4o-mini"  # routed to the fake OpenAI upstream by OPENAI_BASE_URL


def client(stack, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0, **kw)


def test_local_model_answers_without_any_provider(stack):
    reply = client(stack).chat.completions.create(
        model=LOCAL, messages=[{"role": "user", "content": "Hello there, gateway"}])
    assert reply.object == "chat.completion"
    assert reply.model == LOCAL
    assert reply.choices[0].message.role == "assistant"
    assert "Hello there, gateway" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_local_model_streams_chunks_in_order(stack):
    stream = client(stack).chat.completions.create(
        model=LOCAL, messages=[{"role": "user", "content": "one two three four five"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "one two three four five" in text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_upstream_model_through_the_gateway(stack):
    reply = client(stack).chat.completions.create(
        model=UPSTREAM, messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "ping through the edge"}])
    assert reply.choices[0].message.content == "Echo: ping through the edge"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0


def test_upstream_stream_with_usage(stack):
    stream = client(stack).chat.completions.create(
        model=UPSTREAM, messages=[{"role": "user", "content": "stream me please"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_helper_of_the_sdk(stack):
    with client(stack).chat.completions.stream(
            model=UPSTREAM, messages=[{"role": "user", "content": "helper works"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Echo: helper works"


def test_async_client_concurrent_requests(stack):
    async def main():
        aclient = openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
        replies = await asyncio.gather(*(aclient.chat.completions.create(
            model=UPSTREAM, messages=[{"role": "user", "content": f"question {i}"}]) for i in range(8)))
        await aclient.close()
        return replies

    replies = asyncio.run(main())
    assert [r.choices[0].message.content for r in replies] == [f"Echo: question {i}" for i in range(8)]


def test_async_streaming(stack):
    async def main():
        aclient = openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
        stream = await aclient.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "async stream"}], stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await aclient.close()
        return "".join(parts)

    assert "async stream" in asyncio.run(main())


def test_models_list_names_what_can_be_served(stack):
    ids = {m.id for m in client(stack).models.list()}
    assert LOCAL in ids and UPSTREAM in ids


def test_embeddings_local_and_upstream(stack):
    c = client(stack)
    local = c.embeddings.create(model="switchboard-local-embed", input=["a", "b"])
    assert len(local.data) == 2 and len(local.data[0].embedding) > 0
    upstream = c.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(upstream.data) == 1 and upstream.usage.prompt_tokens > 0


def test_unknown_fields_are_tolerated_and_forwarded(stack):
    c = client(stack)
    extras = dict(metadata={"team": "a"}, user="u-1", seed=7, stop=["END"],
                  logit_bias={"50256": -100}, max_completion_tokens=50)
    reply = c.chat.completions.create(model=LOCAL, messages=[{"role": "user", "content": "future"}],
                                      extra_body={"some_future_field": {"x": 1}}, **extras)
    assert "future" in reply.choices[0].message.content
    assert c.chat.completions.create(model=UPSTREAM, messages=[{"role": "user", "content": "known"}],
                                     **extras).choices[0].message.content == "Echo: known"
    # The gateway does not drop what it does not know: the upstream sees it (and, being OpenAI-
    # strict, refuses it by name).
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model=UPSTREAM, messages=[{"role": "user", "content": "future"}],
                                  extra_body={"some_future_field": {"x": 1}})
    assert "some_future_field" in info.value.body["message"]


def test_bad_key_raises_authentication_error(stack):
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=stack.base_url, api_key="sk-wrong", max_retries=0).chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
