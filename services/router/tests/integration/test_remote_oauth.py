"""The remote provider with OAuth credentials over real HTTP: the fake authorization server in its
own process issues tokens, the OpenAI fake accepts only those in force. Each request carries a
current access token (refreshed when near expiry, streams too); a credential whose refresh is
refused gives way to the provider's next one, and when none is left the answer is the refusal
(`token_refresh_failed`), not `all_keys_exhausted`."""

from __future__ import annotations

import time

import httpx
import pytest

from switchboard_router import config, providers
from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.keyring import AllKeysExhausted, StoredKey
from switchboard_router.oauth import OAuthCodec, OAuthToken, TokenRefreshFailed, TokenSet
from switchboard_router.oauth_lock import RefreshLease
from switchboard_router.providers.base import Call
from switchboard_router.upstream import Upstream
from tests.fakes.openai_upstream import start_fake
from tests.fakes.process import fake_process

pytestmark = pytest.mark.timeout(60)
CLIENT_ID = "sb-provider-test"
DEP = Deployment(route="m", name="corp/gpt-4o-mini", provider="corp", model="gpt-4o-mini", weight=1,
                 timeout_seconds=30, read_timeout_seconds=10, connect_timeout_seconds=5)


class _Words:
    def count(self, model: str, text: str) -> int:
        return len(text.split())


class Vault:
    def __init__(self) -> None:
        self.tokens: dict[str, TokenSet] = {}

    async def load(self, credential_id: str) -> TokenSet | None:
        return self.tokens.get(credential_id)

    async def save(self, credential_id: str, tokens: TokenSet) -> None:
        self.tokens[credential_id] = tokens


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("oauth")
    tokens_file = directory / "tokens.txt"
    with fake_process("tests.fakes.oauth_fake", directory, "--client-id", CLIENT_ID,
                      "--tokens-file", str(tokens_file), "--expires-in", "4") as url:
        yield url, tokens_file


@pytest.fixture
async def corp(auth_server):
    url, tokens_file = auth_server
    fake = await start_fake(api_keys=(), tokens_file=tokens_file)
    upstream = Upstream(pool_size=8, per_host=8)
    await upstream.start()
    spec = config.parse({"providers": {"corp": {"type": "openai", "base_url": fake.base_url, "oauth": {
        "client_id": CLIENT_ID, "token_url": f"{url}/token"}}},
        "models": [{"name": "m", "deployments": [{"provider": "corp"}]}]}, {}).providers["corp"]
    provider = providers.build(spec, upstream, _Words())
    vault = Vault()

    def install(*token_sets: TokenSet, ahead: float = 0.0, prefix: str = "pcred_") -> list[OAuthToken]:
        holders, keys = [], []
        for i, tokens in enumerate(token_sets):
            credential_id = f"{prefix}{i}"
            vault.tokens[credential_id] = tokens
            holder = OAuthToken(credential_id, "corp", spec.oauth, tokens, vault,
                                RefreshLease(lambda: None, "t").hold, clock=lambda: time.time() + ahead)
            holders.append(holder)
            keys.append(StoredKey(credential_id, f"oauth:{credential_id}", hint=tokens.hint(),
                                  wrap=lambda make, s, h=holder: OAuthCodec(make, s, h)))
        provider.install_stored(keys)
        return holders

    yield provider, install, url
    await upstream.close()
    await fake.close()


def login(url: str) -> TokenSet:
    from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

    httpx.post(f"{url}/_fake/config", json={"device_script": ["token"]}).raise_for_status()
    device = httpx.post(f"{url}/device/code", data={"client_id": CLIENT_ID}).json()
    answer = httpx.post(f"{url}/token", data={"client_id": CLIENT_ID, "grant_type": DEVICE_CODE_GRANT_TYPE,
                                              "device_code": device["device_code"]}).json()
    return TokenSet.from_answer(answer, time.time())


def revoke_all(url: str) -> None:
    httpx.post(f"{url}/_fake/revoke-refresh-tokens").raise_for_status()


def _call(stream: bool = False) -> Call:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "stream": stream}
    return Call(endpoint=Endpoint.CHAT, body=body, model="m", upstream_model="gpt-4o-mini",
                deployment=DEP, request_id="r")


async def test_requests_carry_a_current_token_refreshed_near_expiry(corp):
    provider, install, url = corp
    tokens = login(url)
    (holder,) = install(tokens)
    assert (await provider.send(_call())).data
    assert holder.refreshes == 0
    holder._clock = lambda: time.time() + 2.5  # within the margin: refreshed before it is sent
    relay, pieces = provider.stream(_call(stream=True))
    body = b"".join([piece async for piece in pieces])
    assert b"[DONE]" in body and holder.refreshes == 1
    assert holder._tokens.access_token != tokens.access_token


async def test_a_refused_refresh_gives_way_to_the_next_credential_then_is_the_answer(corp):
    provider, install, url = corp
    dead = login(url)
    revoke_all(url)  # the first credential's grant is revoked at the provider
    alive = login(url)
    dead_holder, alive_holder = install(dead, alive, ahead=10)  # both expired: both refresh
    for _ in range(2):  # round robin starts on each in turn: the dead one always gives way
        assert (await provider.send(_call())).data
    assert alive_holder.refreshes == 1 and dead_holder.refreshes == 0
    revoke_all(url)
    install(login(url), ahead=10, prefix="pcred_other_")
    revoke_all(url)
    with pytest.raises(TokenRefreshFailed) as caught:
        await provider.send(_call())
    assert caught.value.code == "token_refresh_failed" and "invalid_grant" in caught.value.message


def revoke_access(url: str) -> None:
    httpx.post(f"{url}/_fake/revoke-access-tokens").raise_for_status()


def unlisted_access_tokens(url: str, unlisted: bool) -> None:
    """Whether the token endpoint issues tokens the provider will not take (another audience)."""
    httpx.post(f"{url}/_fake/config", json={"unlisted_access_tokens": unlisted}).raise_for_status()


async def test_a_401_refreshes_the_token_and_retries_the_call_once(corp):
    provider, install, url = corp
    unlisted_access_tokens(url, False)
    (holder,) = install(login(url))
    assert (await provider.send(_call())).data and holder.refreshes == 0
    revoke_access(url)  # the provider ends the token long before its expiry: it answers 401
    assert (await provider.send(_call())).data  # refreshed and retried: the client sees nothing
    assert holder.refreshes == 1
    revoke_access(url)
    relay, pieces = provider.stream(_call(stream=True))  # a stream's 401 likewise
    assert b"[DONE]" in b"".join([piece async for piece in pieces]) and holder.refreshes == 2
    assert [k.state for k in provider.keyring.health()] == ["ready"]


async def test_a_second_401_on_the_refreshed_token_ends_the_credential(corp):
    provider, install, url = corp
    (holder,) = install(login(url))
    try:
        unlisted_access_tokens(url, True)
        revoke_access(url)
        with pytest.raises(AllKeysExhausted) as caught:
            await provider.send(_call())
        assert caught.value.code == "all_keys_exhausted" and "'corp'" in caught.value.message
        assert holder.refreshes == 1  # one refresh, one retry, then no more
        (health,) = provider.keyring.health()
        assert (health.state, health.requests, health.rejected) == ("invalid", 2, 2)
    finally:
        unlisted_access_tokens(url, False)


async def test_a_401_whose_refresh_is_refused_is_token_refresh_failed(corp):
    provider, install, url = corp
    unlisted_access_tokens(url, False)
    (holder,) = install(login(url))
    revoke_access(url)
    revoke_all(url)  # the grant itself was revoked: the refresh the 401 forces is refused
    with pytest.raises(TokenRefreshFailed) as caught:
        await provider.send(_call())
    assert "invalid_grant" in caught.value.message and holder.refreshes == 0
