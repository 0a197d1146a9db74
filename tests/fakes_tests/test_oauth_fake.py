"""The fake authorization server: RFC 8628 answers as the RFC words them, PKCE checked, refresh
tokens rotated and the old one revoked; and the OpenAI fake accepting exactly the access tokens
it lists as in force (beside its own keys, which it still checks)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fakes.openai_upstream import run_fake_in_thread
from tests.fakes.process import fake_process

pytestmark = pytest.mark.timeout(60)
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT = ("fake-client", "fake-secret")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("oauth")
    with fake_process("tests.fakes.oauth_fake", directory, "--client-id", CLIENT[0], "--client-secret",
                      CLIENT[1], "--tokens-file", str(directory / "tokens.txt"), "--expires-in", "1") as url:
        yield url, directory / "tokens.txt"


def test_device_flow_pending_slow_down_then_tokens_and_rotation(server):
    url, _ = server
    httpx.post(f"{url}/_fake/config", json={"device_script": ["authorization_pending", "slow_down", "token"],
                                             "slow_down_status": 429}).raise_for_status()
    assert httpx.post(f"{url}/device/code", auth=("fake-client", "wrong")).status_code == 401
    device = httpx.post(f"{url}/device/code", auth=CLIENT).json()
    assert {"device_code", "user_code", "verification_uri", "interval", "expires_in"} <= set(device)
    poll = {"grant_type": DEVICE, "device_code": device["device_code"]}
    first, second = (httpx.post(f"{url}/token", auth=CLIENT, data=poll) for _ in range(2))
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    assert (second.status_code, second.json()["error"]) == (429, "slow_down")
    tokens = httpx.post(f"{url}/token", auth=CLIENT, data=poll).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 1
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = httpx.post(f"{url}/token", auth=CLIENT, data=refresh).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    again = httpx.post(f"{url}/token", auth=CLIENT, data=refresh)  # the old one is revoked
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_the_openai_fake_takes_only_tokens_in_force(server):
    url, tokens_file = server
    httpx.post(f"{url}/_fake/config", json={"device_script": ["token"]}).raise_for_status()
    device = httpx.post(f"{url}/device/code", auth=CLIENT).json()
    tokens = httpx.post(f"{url}/token", auth=CLIENT, data={"grant_type": DEVICE,
                                                          "device_code": device["device_code"]}).json()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with run_fake_in_thread(api_keys=["sk-own"], tokens_file=tokens_file) as fake:
        def status(key: str) -> int:
            return httpx.post(f"{fake.base_url}/chat/completions", json=body,
                              headers={"authorization": f"Bearer {key}"}).status_code
        assert status(tokens["access_token"]) == 200
        assert status("sk-own") == 200 and status("sk-other") == 401 and status("at-unknown") == 401
        time.sleep(1.1)
        assert status(tokens["access_token"]) == 401  # expired


def test_client_credentials_issue_no_refresh_token_and_revoked_access_tokens_are_refused(server):
    url, tokens_file = server
    httpx.post(f"{url}/_fake/config", json={"expires_in": 60}).raise_for_status()
    grant = {"grant_type": "client_credentials", "scope": "model.completion"}
    assert httpx.post(f"{url}/token", auth=("fake-client", "wrong"), data=grant).status_code == 401
    tokens = httpx.post(f"{url}/token", auth=CLIENT, data=grant).json()
    assert tokens["token_type"] == "Bearer" and "refresh_token" not in tokens  # RFC 6749 §4.4.3
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with run_fake_in_thread(api_keys=[], tokens_file=tokens_file) as fake:
        def status() -> int:
            return httpx.post(f"{fake.base_url}/chat/completions", json=body,
                              headers={"authorization": f"Bearer {tokens['access_token']}"}).status_code
        assert status() == 200
        httpx.post(f"{url}/_fake/revoke-access-tokens").raise_for_status()
        assert status() == 401  # ended before its expiry, as a provider's rollover does
        httpx.post(f"{url}/_fake/config", json={"unlisted_access_tokens": True}).raise_for_status()
        tokens = httpx.post(f"{url}/token", auth=CLIENT, data=grant).json()
        assert status() == 401  # issued, but not one the provider takes
    httpx.post(f"{url}/_fake/config", json={"unlisted_access_tokens": False, "expires_in": 1}).raise_for_status()
    assert httpx.get(f"{url}/_fake/stats").json()["client_credentials_grants"] == 2
