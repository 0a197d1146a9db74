"""The remote provider driving the Bedrock codec over real HTTP (the shared aiohttp pool) against
the fake Bedrock: SigV4 from botocore's credential chain (here the environment's access keys) over
a model id whose colon must reach the fake percent-encoded as it was signed, a Bedrock API key,
event streams, and errors raised where failover can use them."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common import errors

from switchboard_router import providers
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from switchboard_router.upstream import Upstream
from tests.fakes import bedrock_fake
from tests.fakes.bedrock_fake import start_bedrock_fake

pytestmark = pytest.mark.timeout(60)
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
DEP = Deployment(route="bedrock/*", name="bedrock/*", provider="bedrock", model=None, weight=1,
                 timeout_seconds=30, read_timeout_seconds=10, connect_timeout_seconds=5)


class _Words:
    def count(self, model: str, text: str) -> int:
        return len(text.split())


def _spec(base_url: str, api_key: str = "") -> ProviderSpec:
    return ProviderSpec(name="bedrock", type="bedrock", base_url=base_url, api_key=api_key, headers={},
                        stream_usage=True, owned_by="bedrock", enabled=True, key_env=None,
                        timeout_seconds=None, read_timeout_seconds=None, connect_timeout_seconds=None,
                        region=bedrock_fake.REGION)


@pytest.fixture
async def bedrock(monkeypatch, tmp_path):
    # botocore's chain finds the environment's keys, and nothing of the machine's own AWS setup.
    for name in ("AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bedrock_fake.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bedrock_fake.SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    fake = await start_bedrock_fake()
    upstream = Upstream(pool_size=8, per_host=8)
    await upstream.start()
    yield fake, upstream, providers.build(_spec(fake.base_url), upstream, _Words())
    await upstream.close()
    await fake.close()


def _call(text: str, **body) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": f"bedrock/{MODEL}",
                                              "messages": [{"role": "user", "content": text}], **body},
                model=f"bedrock/{MODEL}", upstream_model=MODEL, deployment=DEP, request_id="r",
                include_usage=bool(body.get("stream_options")))


async def test_a_whole_answer_signed_from_the_credential_chain(bedrock):
    fake, _, provider = bedrock
    reply = await provider.send(_call("hello over http"))
    answer = orjson.loads(reply.data)
    assert answer["choices"][0]["message"]["content"] == "Echo: hello over http"
    assert (reply.usage.prompt, reply.usage.completion) == (3, 4)
    sent = fake.requests[-1]
    assert sent.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    assert sent.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={bedrock_fake.ACCESS_KEY}/")


async def test_a_bedrock_api_key(bedrock):
    fake, upstream, _ = bedrock
    provider = providers.build(_spec(fake.base_url, api_key=bedrock_fake.API_KEY), upstream, _Words())
    reply = await provider.send(_call("hello bearer"))
    assert orjson.loads(reply.data)["choices"][0]["message"]["content"] == "Echo: hello bearer"
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {bedrock_fake.API_KEY}"
    wrong = providers.build(_spec(fake.base_url, api_key="wrong"), upstream, _Words())
    with pytest.raises(errors.UpstreamError) as info:
        await wrong.send(_call("x"))
    assert info.value.code == "provider_auth_error"


async def test_a_stream(bedrock):
    _, _, provider = bedrock
    tally, pieces = provider.stream(_call("stream over http", stream=True, stream_options={"include_usage": True}))
    data = b"".join([piece async for piece in pieces])
    assert data.endswith(b"data: [DONE]\n\n") and b'"usage":{"prompt_tokens":3' in data
    assert tally.error is None and (tally.usage.prompt, tally.usage.completion) == (3, 4)


async def test_errors_before_the_first_byte_are_raised_for_failover(bedrock):
    _, _, provider = bedrock
    with pytest.raises(ProviderOverloaded):
        await provider.send(_call("x [fake:error-503]"))
    with pytest.raises(errors.RateLimited) as info:
        await provider.send(_call("x [fake:not-ready]"))
    assert "not ready" in info.value.message
    with pytest.raises(errors.InvalidRequest):
        await provider.send(_call("x [fake:error-400]"))
    _, pieces = provider.stream(_call("a b [fake:exception-first]", stream=True))
    with pytest.raises(errors.RateLimited):
        async for _ in pieces:
            pass


async def test_an_exception_frame_after_the_first_bytes_ends_the_stream_with_it(bedrock):
    _, _, provider = bedrock
    tally, pieces = provider.stream(_call("one two three [fake:exception-event]", stream=True))
    data = b"".join([piece async for piece in pieces])
    assert b'"content":"Echo:"' in data and b"rate_limit_error" in data
    assert isinstance(tally.error, errors.RateLimited)
    # A cut connection: a read error (raised), or a clean end before the message was complete.
    tally, pieces = provider.stream(_call("one two three four [fake:abort-mid-stream]", stream=True))
    try:
        data = b"".join([piece async for piece in pieces])
    except errors.UpstreamError:
        return
    assert tally.error is not None and b"before the message was complete" in data
