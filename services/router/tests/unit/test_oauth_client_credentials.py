"""The client-credentials grant (RFC 6749 §4.4) against the fake authorization server in its own
process: a token at first use with no login, again before expiry, single-flight under twenty
concurrent requests, again at once after the provider's 401, and a refused client reported as
token_refresh_failed naming the grant."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from switchboard_router.domain import OAuthSpec
from switchboard_router.oauth import OAuthToken, TokenRefreshFailed
from tests.fakes.process import fake_process

CLIENT_ID, CLIENT_SECRET = "sb-cc-client", "sb-cc-client-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fake_process("tests.fakes.oauth_fake", tmp_path_factory.mktemp("oauth-cc"), "--client-id",
                      CLIENT_ID, "--client-secret", CLIENT_SECRET, "--expires-in", "4") as url:
        yield url


def spec(url: str, secret: str = CLIENT_SECRET) -> OAuthSpec:
    return OAuthSpec(client_id=CLIENT_ID, client_secret=secret, token_url=f"{url}/token",
                     grant="client_credentials", scopes=("model.completion",))


def grants(url: str) -> int:
    return httpx.get(f"{url}/_fake/stats").json()["client_credentials_grants"]


def configure(url: str, **settings) -> None:
    httpx.post(f"{url}/_fake/config", json={"refresh_delay_seconds": 0, **settings}).raise_for_status()


async def test_a_token_at_first_use_kept_while_fresh_and_fetched_again_before_expiry(server):
    configure(server)
    ahead = [0.0]
    token = OAuthToken.client_credentials("corp", spec(server), clock=lambda: time.time() + ahead[0])
    before = grants(server)
    first = await token.access_token()
    assert first.startswith("at-") and grants(server) == before + 1
    assert await token.access_token() == first and grants(server) == before + 1
    ahead[0] = 2.5  # within half of its 4 s lifetime of expiring: fetched again, still valid
    second = await token.access_token()
    assert second != first and grants(server) == before + 2
    assert token.refreshes == 2


async def test_twenty_concurrent_first_uses_make_one_grant(server):
    configure(server, refresh_delay_seconds=0.3)
    token = OAuthToken.client_credentials("corp", spec(server))
    before = grants(server)
    got = await asyncio.gather(*(token.access_token() for _ in range(20)))
    assert grants(server) == before + 1 and len(set(got)) == 1


async def test_a_rejected_token_is_replaced_at_once_single_flight(server):
    configure(server, refresh_delay_seconds=0.2)
    token = OAuthToken.client_credentials("corp", spec(server))
    first = await token.access_token()
    before = grants(server)
    token.reject("at-some-older-token")  # a 401 to a token already replaced: nothing to do
    assert await token.access_token() == first and grants(server) == before
    for _ in range(20):  # twenty calls heard the provider's 401 to the same token
        token.reject(first)
    got = await asyncio.gather(*(token.access_token() for _ in range(20)))
    assert grants(server) == before + 1 and set(got) == {got[0]} and got[0] != first


async def test_a_refused_client_is_token_refresh_failed_naming_the_grant(server):
    configure(server)
    token = OAuthToken.client_credentials("corp", spec(server, secret="wrong-secret"))
    with pytest.raises(TokenRefreshFailed) as caught:
        await token.access_token()
    error = caught.value
    assert error.code == "token_refresh_failed" and error.http_status == 503
    assert "invalid_client" in error.message and "client-credentials" in error.message
    assert "'corp'" in error.message and "wrong-secret" not in error.message
