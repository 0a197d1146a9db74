"""The remote provider driving the Anthropic codec over real HTTP (the shared aiohttp pool)
against the fake Anthropic API: answers, streams, and errors raised where failover can use them."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common import errors

from switchboard_router import providers
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from switchboard_router.upstream import Upstream
from tests.fakes.anthropic_fake import start_anthropic_fake

pytestmark = pytest.mark.timeout(60)
DEP = Deployment(route="anthropic/*", name="anthropic/*", provider="anthropic", model=None, weight=1,
                 timeout_seconds=30, read_timeout_seconds=10, connect_timeout_seconds=5)


class _Words:
    def count(self, model: str, text: str) -> int:
        return len(text.split())


@pytest.fixture
async def anthropic():
    fake = await start_anthropic_fake(api_keys=["sk-ant-good"])
    upstream = Upstream(pool_size=8, per_host=8)
    await upstream.start()
    spec = ProviderSpec(name="anthropic", type="anthropic", base_url=fake.base_url, api_key="sk-ant-good",
                        headers={}, stream_usage=True, owned_by="anthropic", enabled=True, key_env=None,
                        timeout_seconds=None, read_timeout_seconds=None, connect_timeout_seconds=None)
    yield fake, providers.build(spec, upstream, _Words())
    await upstream.close()
    await fake.close()


def _call(text: str, **body) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": "anthropic/claude-haiku-4-5",
                                              "messages": [{"role": "user", "content": text}], **body},
                model="anthropic/claude-haiku-4-5", upstream_model="claude-haiku-4-5", deployment=DEP,
                request_id="r", include_usage=bool(body.get("stream_options")))


async def test_a_whole_answer(anthropic):
    fake, provider = anthropic
    reply = await provider.send(_call("hello over http"))
    answer = orjson.loads(reply.data)
    assert answer["choices"][0]["message"]["content"] == "Echo: hello over http"
    assert (reply.usage.prompt, reply.usage.completion) == (3, 4)
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == "sk-ant-good" and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["max_tokens"] == 64000


async def test_a_stream(anthropic):
    _, provider = anthropic
    tally, pieces = provider.stream(_call("stream over http", stream=True, stream_options={"include_usage": True}))
    data = b"".join([piece async for piece in pieces])
    assert data.endswith(b"data: [DONE]\n\n") and b'"usage":{"prompt_tokens":3' in data
    assert tally.error is None and (tally.usage.prompt, tally.usage.completion) == (3, 4)


async def test_errors_before_the_first_byte_are_raised_for_failover(anthropic):
    _, provider = anthropic
    with pytest.raises(ProviderOverloaded) as info:
        await provider.send(_call("x [fake:error-529]"))
    assert info.value.retry_after == 7 and info.value.http_status == 503
    with pytest.raises(errors.RateLimited):
        await provider.send(_call("x [fake:error-429]"))
    # An `error` event in the first read, before the client got anything: raised, not streamed.
    _, pieces = provider.stream(_call("a b [fake:error-first]", stream=True))
    with pytest.raises(ProviderOverloaded):
        async for _ in pieces:
            pass


async def test_an_error_event_after_the_first_bytes_ends_the_stream_with_it(anthropic):
    _, provider = anthropic
    tally, pieces = provider.stream(_call("a b c [fake:error-event]", stream=True))
    # The fake sends the error in a write of its own; should a loaded machine deliver both writes
    # in one read, the error comes before any byte and is raised instead (the case above).
    try:
        data = b"".join([piece async for piece in pieces])
    except ProviderOverloaded:
        return
    assert b'"content":"Echo:"' in data and b"[DONE]" not in data
    assert orjson.loads(data.split(b"\n\n")[-2][6:])["error"]["code"] == "provider_overloaded"
    assert isinstance(tally.error, ProviderOverloaded)


NATIVE = {"model": "anthropic/claude-haiku-4-5", "max_tokens": 2048,
          "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
          "thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"user_id": "u"},
          "messages": [{"role": "user", "content": "hello natively"}]}


def _native(body: dict, betas: tuple[str, ...] = ()) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={}, model="anthropic/claude-haiku-4-5",
                upstream_model="claude-haiku-4-5", deployment=DEP, request_id="r", native=body,
                betas=betas)


async def test_a_native_body_reaches_anthropic_as_sent_and_its_answer_comes_back(anthropic):
    fake, provider = anthropic
    assert provider.speaks_messages("claude-haiku-4-5")
    reply = await provider.send(_native(NATIVE, ("prompt-caching-2024-07-31",)))
    sent = fake.requests[-1]
    assert sent.json == {**NATIVE, "model": "claude-haiku-4-5"}  # validated there by the SDK's types
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    message = orjson.loads(reply.data)
    assert message["model"] == "anthropic/claude-haiku-4-5"
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert reply.usage.cached == message["usage"]["cache_read_input_tokens"] > 0  # cache_control seen

    tally, pieces = provider.stream(_native({**NATIVE, "stream": True}))
    data = b"".join([piece async for piece in pieces])
    assert data.startswith(b"event: message_start\n")
    assert data.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert b'"signature_delta"' in data and tally.error is None
    assert tally.usage.cached == reply.usage.cached and tally.usage.completion == reply.usage.completion


async def test_count_tokens_is_anthropics_own(anthropic):
    fake, provider = anthropic
    body = {k: v for k, v in NATIVE.items() if k not in ("max_tokens", "metadata")}
    answer = await provider.count_message_tokens(_native(body))
    assert orjson.loads(answer) == {"input_tokens": 4}  # "Be terse." and "hello natively"
    assert fake.requests[-1].path == "/v1/messages/count_tokens"
    with pytest.raises(errors.InvalidRequest):
        await provider.count_message_tokens(_native({**body, "max_tokens": 5}))
