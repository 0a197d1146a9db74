"""Through the real stack (edge, router, auth, NATS) against the fake authorization server: a
provider whose OAuth token the router gets by the client-credentials grant (no login), the
provider's 401 to a token answered by one refresh and one retry the client never sees, a second
401 ending the credential as all_keys_exhausted, and a deployment with keys of its own. The
OpenAI fake accepts only the access tokens the authorization server lists as in force, and
only the keys it is given."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.credentials_stack import auth_server, oauth_stack
from tests.e2e.test_http_edge import assert_openai_error, post

CLIENT_ID, CLIENT_SECRET = "sb-e2e-m2m", "sb-e2e-m2m-secret-0123456789"
TEAM_KEY, SHARED_KEY = "sk-team-a-own-key-0001", "sk-shared-not-accepted-0002"
STORED_KEY = "sk-team-a-stored-key-0003"


@pytest.fixture
def grants_stack(tmp_path):
    def config(openai_url: str, auth_url: str) -> dict:
        return {
            "providers": {
                "local": {"type": "local"},
                "m2m": {"type": "openai", "base_url": openai_url, "oauth": {
                    "grant": "client_credentials", "client_id": "${M2M_CLIENT_ID}",
                    "client_secret": "${M2M_CLIENT_SECRET}", "token_url": f"{auth_url}/token",
                    "scopes": ["model.completion"]}},
                "shared": {"type": "openai", "base_url": openai_url, "api_key": "${SHARED_KEY}"}},
            "models": [
                {"name": "switchboard-local", "deployments": [{"provider": "local"}]},
                {"name": "m2m-model", "deployments": [{"provider": "m2m", "model": "gpt-4o-mini"}]},
                {"name": "team-model", "deployments": [{"provider": "shared", "model": "gpt-4o-mini",
                                                        "name": "team-a", "api_keys": ["${TEAM_KEY}"]}]}],
        }

    env = {"M2M_CLIENT_ID": CLIENT_ID, "M2M_CLIENT_SECRET": CLIENT_SECRET,
           "TEAM_KEY": TEAM_KEY, "SHARED_KEY": SHARED_KEY}
    with oauth_stack(tmp_path, CLIENT_ID, CLIENT_SECRET, expires_in=3600,
                     api_keys={TEAM_KEY, STORED_KEY}, config=config, env=env) as stack:
        yield stack


def grants(stack) -> int:
    return auth_server(stack, "GET", "/_fake/stats")["client_credentials_grants"]


def chat(stack, model: str = "m2m-model") -> httpx.Response:
    return post(stack, {"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_client_credentials_401_retry_and_a_deployments_own_keys(grants_stack):
    stack = grants_stack
    # No login: the first request gets the token, the next ones use it.
    assert grants(stack) == 0
    assert chat(stack).status_code == 200
    assert chat(stack).status_code == 200
    assert grants(stack) == 1

    # The provider ends the token long before its expiry: its 401 makes one new token and one
    # retry, and the client sees a 200.
    auth_server(stack, "POST", "/_fake/revoke-access-tokens")
    assert chat(stack).status_code == 200
    assert grants(stack) == 2

    # Twenty concurrent requests hearing the same 401: one new token between them.
    auth_server(stack, "POST", "/_fake/config", json={"refresh_delay_seconds": 0.3})
    auth_server(stack, "POST", "/_fake/revoke-access-tokens")
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: chat(stack).status_code, range(20)))
    assert codes == [200] * 20
    assert grants(stack) == 3

    # A token the provider refuses again after the refresh ends the credential: one retry, then
    # all_keys_exhausted at once (no loop of refreshes), naming the provider, never a token.
    auth_server(stack, "POST", "/_fake/config", json={"refresh_delay_seconds": 0, "unlisted_access_tokens": True})
    auth_server(stack, "POST", "/_fake/revoke-access-tokens")
    started = time.monotonic()
    resp = chat(stack)
    assert_openai_error(resp, 503, code="all_keys_exhausted")
    assert time.monotonic() - started < 5 and grants(stack) == 4
    assert "'m2m'" in resp.json()["error"]["message"]
    issued = auth_server(stack, "GET", "/_fake/issued")["tokens"]
    assert issued and not [t for t in issued if t in resp.text]

    # A deployment with keys of its own: served with its key (the fake refuses the provider's),
    # its key ring shown under `<provider>@<deployment name>` by hint only.
    assert chat(stack, "team-model").status_code == 200
    stats = httpx.get(stack.edge_url + "/api/routing/stats", timeout=10,
                      headers={"authorization": f"Bearer {stack.master_key}"}).json()
    keys = {(k["provider"], k["state"]) for k in stats["provider_keys"]}
    assert ("shared@team-a", "ready") in keys and ("m2m", "invalid") in keys
    assert TEAM_KEY not in str(stats) and SHARED_KEY not in str(stats)

    # Its stored credentials go by the same name; a client-credentials provider stores none.
    admin = {"authorization": f"Bearer {stack.master_key}"}
    added = httpx.post(stack.edge_url + "/api/credentials", headers=admin, timeout=10,
                       json={"provider": "shared@team-a", "secret": STORED_KEY})
    assert added.status_code == 200 and added.json()["provider"] == "shared@team-a"
    assert STORED_KEY not in added.text
    for provider in ("shared@nobody", "m2m"):
        refused = httpx.post(stack.edge_url + "/api/credentials", headers=admin, timeout=10,
                             json={"provider": provider, "secret": "sk-whatever-0123456789"})
        assert_openai_error(refused, 400, param="provider")
    assert [chat(stack, "team-model").status_code for _ in range(4)] == [200] * 4
    stats = httpx.get(stack.edge_url + "/api/routing/stats", timeout=10, headers=admin).json()
    team = [k for k in stats["provider_keys"] if k["provider"] == "shared@team-a"]
    assert len(team) == 2 and all(k["requests"] >= 2 for k in team)  # round robin over both
