"""OAuth token refresh against the fake authorization server in its own process: before expiry,
single-flight within a replica and across two (a real NATS KV lease), rotated refresh tokens
stored before use, a revoked refresh token reported as token_refresh_failed without a token."""

from __future__ import annotations

import asyncio
import time

import httpx
import nats
import pytest
from switchboard_common.errors import InvalidRequest, ServiceUnavailable

from switchboard_router import oauth
from switchboard_router.domain import OAuthSpec
from switchboard_router.oauth import OAuthToken, TokenRefreshFailed, TokenSet
from switchboard_router.oauth_lock import RefreshLease
from tests.fakes.process import fake_process

CLIENT_ID, CLIENT_SECRET = "sb-test-client", "sb-test-client-secret"


class MemoryVault:
    """The store port (auth's sealed credentials in the router) as a dict, for one credential."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = {"pcred_test": tokens}
        self.saves: list[TokenSet] = []

    async def load(self, credential_id: str) -> TokenSet | None:
        await asyncio.sleep(0.005)  # a round trip to auth
        return self.tokens.get(credential_id)

    async def save(self, credential_id: str, tokens: TokenSet) -> None:
        await asyncio.sleep(0.005)
        self.tokens[credential_id] = tokens
        self.saves.append(tokens)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fake_process("tests.fakes.oauth_fake", tmp_path_factory.mktemp("oauth"), "--client-id", CLIENT_ID,
                      "--client-secret", CLIENT_SECRET, "--expires-in", "4") as url:
        yield url


def spec(url: str, **kw) -> OAuthSpec:
    return OAuthSpec(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_url=f"{url}/token",
                     scopes=("model.completion",), revocation_url=f"{url}/revoke", **kw)


def configure(url: str, **settings) -> None:
    httpx.post(f"{url}/_fake/config", json={"refresh_delay_seconds": 0, "expires_in": 4,
                                             **settings}).raise_for_status()


def revoke_all(url: str) -> None:
    httpx.post(f"{url}/_fake/revoke-refresh-tokens").raise_for_status()


def stats(url: str) -> dict:
    return httpx.get(f"{url}/_fake/stats").json()


def login(url: str) -> TokenSet:
    """A token set as a device login gets it (the fake approves at the first poll)."""
    configure(url, device_script=["token"])
    auth = (CLIENT_ID, CLIENT_SECRET)
    device = httpx.post(f"{url}/device/code", data={"scope": "model.completion"}, auth=auth).json()
    answer = httpx.post(f"{url}/token", auth=auth, data={
        "grant_type": oauth_device_grant(), "device_code": device["device_code"]}).json()
    return oauth.parse_secret(httpx.Response(200, json=answer).text)


def oauth_device_grant() -> str:
    from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

    return DEVICE_CODE_GRANT_TYPE


def holder(url: str, tokens: TokenSet, vault: MemoryVault, *, lease=None, ahead: float = 0.0,
           **kw) -> OAuthToken:
    return OAuthToken("pcred_test", "corp", spec(url, **kw), tokens, vault,
                      lease or RefreshLease(lambda: None, "t").hold, clock=lambda: time.time() + ahead)


async def test_a_fresh_token_is_used_as_it_is(server):
    tokens = login(server)
    before = stats(server)["refresh_attempts"]
    token = holder(server, tokens, MemoryVault(tokens))
    assert await token.access_token() == tokens.access_token
    assert stats(server)["refresh_attempts"] == before


async def test_refreshed_before_expiry_and_the_rotated_token_stored_first(server):
    tokens = login(server)
    vault = MemoryVault(tokens)
    before = stats(server)
    # 2.5 s into a 4 s token: within the margin (half its lifetime), not yet expired.
    token = holder(server, tokens, vault, ahead=2.5)
    assert tokens.expires_at is not None and time.time() + 2.5 < tokens.expires_at
    access = await token.access_token()
    after = stats(server)
    assert access != tokens.access_token
    assert after["refreshes"] == before["refreshes"] + 1
    # The new set, with the provider's new refresh token, was saved; the old one is revoked.
    assert [s.access_token for s in vault.saves] == [access]
    assert vault.saves[0].refresh_token not in (None, tokens.refresh_token)
    assert after["valid_refresh_tokens"] == before["valid_refresh_tokens"]


async def test_twenty_concurrent_requests_on_an_expired_token_make_one_refresh(server):
    tokens = login(server)
    configure(server, refresh_delay_seconds=0.3)  # all twenty arrive while it runs
    before = stats(server)["refresh_attempts"]
    token = holder(server, tokens, MemoryVault(tokens), ahead=10)  # expired
    got = await asyncio.gather(*(token.access_token() for _ in range(20)))
    assert stats(server)["refresh_attempts"] == before + 1
    assert len(set(got)) == 1 and got[0] != tokens.access_token


async def test_two_replicas_make_one_refresh_under_the_nats_lease(server, nats_url):
    tokens = login(server)
    configure(server, refresh_delay_seconds=0.3)
    vault = MemoryVault(tokens)  # auth's store, which both replicas read and write
    one, two = await nats.connect(nats_url), await nats.connect(nats_url)
    try:
        replicas = [holder(server, tokens, vault, ahead=10, lease=RefreshLease(lambda nc=nc: nc, name).hold)
                    for nc, name in ((one, "router-1"), (two, "router-2"))]
        before = stats(server)["refresh_attempts"]
        got = await asyncio.gather(*(r.access_token() for r in replicas for _ in range(20)))
        assert stats(server)["refresh_attempts"] == before + 1
        assert len(set(got)) == 1
        assert sum(r.refreshes for r in replicas) == 1
    finally:
        await one.close()
        await two.close()


async def test_without_the_lease_two_replicas_would_refresh_twice(server):
    """The control for the test above: the same race with no shared lease makes two refresh
    calls, the second with a revoked refresh token; the loser reads the winner's stored set."""
    tokens = login(server)
    configure(server, refresh_delay_seconds=0.3)
    vault = MemoryVault(tokens)
    replicas = [holder(server, tokens, vault, ahead=10) for _ in range(2)]
    before = stats(server)["refresh_attempts"]
    await asyncio.gather(*(r.access_token() for r in replicas), return_exceptions=True)
    assert stats(server)["refresh_attempts"] == before + 2
    assert stats(server)["refused_refreshes"] >= 1


class StaleFirstVault(MemoryVault):
    """Another replica stores its refreshed set while this one refreshes: the first read (under
    the lease) still sees the old set, the next one the new."""

    def __init__(self, old: TokenSet, new: TokenSet) -> None:
        super().__init__(old)
        self._then = new

    async def load(self, credential_id: str) -> TokenSet | None:
        seen = await super().load(credential_id)
        self.tokens[credential_id] = self._then
        return seen


async def test_a_refusal_after_another_replica_rotated_the_token_takes_its_new_set(server):
    tokens = login(server)
    configure(server)
    # Another replica refreshes first (and so revokes `tokens.refresh_token`).
    winner = holder(server, tokens, MemoryVault(tokens), ahead=10)
    await winner.access_token()
    newer = winner._tokens
    late = holder(server, tokens, StaleFirstVault(tokens, newer), ahead=0)
    late._clock = lambda: newer.obtained_at + 1.0  # the old set stale, the new one fresh
    assert await late.access_token() == newer.access_token
    assert late.refreshes == 0


async def test_a_revoked_refresh_token_is_token_refresh_failed_with_the_reason(server):
    tokens = login(server)
    revoke_all(server)
    token = holder(server, tokens, MemoryVault(tokens), ahead=10)
    before = stats(server)["refresh_attempts"]
    with pytest.raises(TokenRefreshFailed) as caught:
        await token.access_token()
    error = caught.value
    assert error.code == "token_refresh_failed" and error.http_status == 503
    assert "invalid_grant" in error.message and "corp" in error.message
    assert tokens.refresh_token not in error.message and tokens.access_token not in error.message
    # A dead credential is not hammered: the next request hears the same at once.
    with pytest.raises(TokenRefreshFailed):
        await token.access_token()
    assert stats(server)["refresh_attempts"] == before + 1


async def test_an_unreachable_token_endpoint_is_token_refresh_failed(server):
    tokens = login(server)
    token = OAuthToken("pcred_test", "corp", OAuthSpec(
        client_id=CLIENT_ID, client_secret=None, token_url="http://127.0.0.1:9/token"),
        tokens, MemoryVault(tokens), RefreshLease(lambda: None, "t").hold, clock=lambda: time.time() + 10)
    with pytest.raises(TokenRefreshFailed, match="unreachable"):
        await token.access_token()


async def test_revoke_ends_the_refresh_token_at_the_provider(server):
    tokens = login(server)
    assert await oauth.revoke(spec(server), tokens, "corp", "pcred_test") is True
    token = holder(server, tokens, MemoryVault(tokens), ahead=10)
    with pytest.raises(TokenRefreshFailed, match="invalid_grant"):
        await token.access_token()


def test_a_token_set_is_the_token_endpoints_answer():
    tokens = oauth.parse_secret('{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 60}',
                                now=1000.0)
    assert (tokens.expires_at, tokens.obtained_at) == (1060.0, 1000.0)
    assert oauth.parse_secret(tokens.to_json()) == tokens  # as it is sealed and read back
    assert "rt-1" not in tokens.hint() and "at-1" not in repr(tokens)
    assert tokens.fresh(1029.0, 60) and not tokens.fresh(1031.0, 60)  # margin: half of 60 s
    absolute = oauth.parse_secret('{"access_token": "at-1", "expires_at": 5000}', now=1000.0)
    assert absolute.expires_at == 5000.0 and absolute.refresh_token is None
    for bad in ("sk-plain-key", "[]", '{"refresh_token": "rt"}', "x" * 20_000):
        with pytest.raises(InvalidRequest) as caught:
            oauth.parse_secret(bad)
        assert caught.value.param == "secret"


class AwayFirstVault(MemoryVault):
    """The store is away for the first saves (auth restarting), then back."""

    def __init__(self, tokens: TokenSet, away_for: int) -> None:
        super().__init__(tokens)
        self.away_for = away_for

    async def save(self, credential_id: str, tokens: TokenSet) -> None:
        if self.away_for > 0:
            self.away_for -= 1
            raise ServiceUnavailable("auth is unavailable")
        await super().save(credential_id, tokens)


async def test_a_refreshed_set_the_store_refused_is_used_and_stored_once_it_is_back(server,
                                                                                      monkeypatch):
    monkeypatch.setattr(oauth, "SAVE_RETRY_SECONDS", 0.01)
    tokens = login(server)
    vault = AwayFirstVault(tokens, away_for=2)
    token = holder(server, tokens, vault, ahead=2.5)
    access = await token.access_token()
    assert access != tokens.access_token  # the only valid set now (the old refresh token is spent)
    assert vault.saves == []
    assert token._saving is not None
    await token._saving  # a second refusal, then stored
    assert [s.access_token for s in vault.saves] == [access]


async def test_a_remembered_refusal_is_raised_afresh_each_time(server):
    tokens = login(server)
    revoke_all(server)
    token = holder(server, tokens, MemoryVault(tokens), ahead=10)
    raised = []
    for _ in range(2):
        with pytest.raises(TokenRefreshFailed) as failed:
            await token.access_token()
        raised.append(failed.value)
    assert raised[0] is not raised[1] and raised[0].message == raised[1].message
