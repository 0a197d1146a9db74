"""OAuth provider credentials through the real stack: `switchboard credentials login` against a
fake authorization server (device code, PKCE S256, pending then slow_down), the tokens stored
sealed through /api/credentials, access tokens refreshed before expiry, twenty concurrent requests
on an expired token making one refresh (also with two router processes), a revoked refresh token
answered `token_refresh_failed`, and no token in any admin answer or log file.

The OpenAI fake accepts only the access tokens the authorization server lists as in force, so a
request sent with an expired or superseded token fails loudly."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from click.testing import CliRunner
from google.api import httpbody_pb2

from switchboard_cli.main import cli
from tests.e2e.credentials_stack import auth_server, oauth_stack, router_replica
from tests.e2e.test_http_edge import assert_openai_error, post

CLIENT_ID, CLIENT_SECRET = "sb-e2e-client", "sb-e2e-client-secret-0123456789"
LIFETIME = 10.0  # seconds an access token lives: refreshed 5 s before it ends (half its lifetime)
BODY = {"model": "corp-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def corp_stack(tmp_path):
    def config(openai_url: str, auth_url: str) -> dict:
        return {
            "providers": {"local": {"type": "local"},
                          "corp": {"type": "openai", "base_url": openai_url, "oauth": {
                              "client_id": "${CORP_CLIENT_ID}", "client_secret": "${CORP_CLIENT_SECRET}",
                              "token_url": f"{auth_url}/token",
                              "device_authorization_url": f"{auth_url}/device/code",
                              "revocation_url": f"{auth_url}/revoke",
                              "scopes": ["model.completion"], "pkce": True}}},
            "models": [{"name": "switchboard-local", "deployments": [{"provider": "local"}]},
                       {"name": "corp-model", "deployments": [{"provider": "corp", "model": "gpt-4o-mini"}]}],
        }

    env = {"CORP_CLIENT_ID": CLIENT_ID, "CORP_CLIENT_SECRET": CLIENT_SECRET}
    # api_keys empty: the OpenAI fake takes the access tokens in force only.
    with oauth_stack(tmp_path, CLIENT_ID, CLIENT_SECRET, expires_in=LIFETIME, api_keys=set(),
                     config=config, env=env) as stack:
        yield stack


@pytest.fixture
def second_router(corp_stack, tmp_path):
    with router_replica(corp_stack, tmp_path) as stub:
        yield stub


def cli_env(stack) -> dict[str, str | None]:
    return {"SWITCHBOARD_URL": stack.edge_url, "SWITCHBOARD_API_KEY": stack.master_key,
            "SWITCHBOARD_MASTER_KEY": None, "CORP_CLIENT_ID": CLIENT_ID,
            "CORP_CLIENT_SECRET": CLIENT_SECRET, "SWITCHBOARD_DEVICE_POLL_SCALE": "0.02"}


def login(stack) -> tuple[dict, str]:
    auth_server(stack, "POST", "/_fake/config", json={"device_script": [
        "authorization_pending", "slow_down", "token"], "expires_in": LIFETIME})
    result = CliRunner().invoke(cli, ["credentials", "login", "corp", "--config", str(stack.config_path),
                                      "--json"], env=cli_env(stack))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.output


def chat(stack) -> httpx.Response:
    return post(stack, BODY)


def chat_on(stub, master_key: str) -> str:
    """One chat on a router replica directly (gRPC, as the edge calls it): "ok" or the status."""
    try:
        for _ in stub.ChatCompletions(httpbody_pb2.HttpBody(content_type="application/json",
                                                            data=json.dumps(BODY).encode()),
                                      metadata=(("authorization", f"Bearer {master_key}"),), timeout=30):
            pass
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    return "ok"


def attempts(stack) -> int:
    return auth_server(stack, "GET", "/_fake/stats")["refresh_attempts"]


def wait_until_expired(issued_before: float) -> None:
    time.sleep(max(0.0, issued_before + LIFETIME + 0.5 - time.time()))


def test_login_refresh_before_expiry_single_flight_and_revoke(corp_stack, second_router):
    stack, answers = corp_stack, []
    before_login = time.time()
    cred, shown = login(stack)
    answers.append(shown)
    assert cred["provider"] == "corp" and cred["hint"].startswith("oauth:")
    cred_id = cred["credential_id"]
    stored = time.time()  # the router got the tokens before this
    assert chat(stack).status_code == 200  # the access token the login got

    # Before expiry: 5.5 s into a 10 s token the next request refreshes it, while it still works.
    time.sleep(max(0.0, stored + 5.5 - time.time()))
    assert time.time() < before_login + LIFETIME
    first = attempts(stack)
    assert chat(stack).status_code == 200
    stats = auth_server(stack, "GET", "/_fake/stats")
    assert stats["refresh_attempts"] == first + 1
    assert stats["refreshed_at"][-1] < before_login + LIFETIME  # the old token had not expired

    # Twenty concurrent requests on an expired token: one refresh.
    auth_server(stack, "POST", "/_fake/config", json={"refresh_delay_seconds": 0.3})
    wait_until_expired(stats["refreshed_at"][-1])
    first = attempts(stack)
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: chat(stack).status_code, range(20)))
    assert codes == [200] * 20
    assert attempts(stack) == first + 1

    # The same across two router processes: twenty on each, one refresh between them.
    wait_until_expired(auth_server(stack, "GET", "/_fake/stats")["refreshed_at"][-1])
    first = attempts(stack)
    with ThreadPoolExecutor(40) as pool:
        edge = [pool.submit(lambda: chat(stack).status_code) for _ in range(20)]
        other = [pool.submit(chat_on, second_router, stack.master_key) for _ in range(20)]
        assert [f.result() for f in edge] == [200] * 20
        assert [f.result() for f in other] == ["ok"] * 20
    assert attempts(stack) == first + 1

    # Admin answers show hints only.
    runner = CliRunner()
    for args in (["credentials", "list"], ["credentials", "show", cred_id], ["credentials", "list", "--json"]):
        result = runner.invoke(cli, args, env=cli_env(stack))
        assert result.exit_code == 0 and cred_id in result.output, result.output
        answers.append(result.output)
    answers += [httpx.get(stack.edge_url + path, headers={"authorization": f"Bearer {stack.master_key}"},
                          timeout=10).text for path in ("/api/credentials", f"/api/credentials/{cred_id}",
                                                        "/api/routing/stats")]

    # Revoked: removed from the gateway and revoked at the provider's revocation endpoint.
    revocations = auth_server(stack, "GET", "/_fake/stats")["revocations"]
    result = runner.invoke(cli, ["credentials", "revoke", cred_id, "--yes"], env=cli_env(stack))
    assert result.exit_code == 0, result.output
    answers.append(result.output)
    stats = auth_server(stack, "GET", "/_fake/stats")
    assert stats["revocations"] == revocations + 1 and stats["valid_refresh_tokens"] == 0
    assert_openai_error(chat(stack), 503, code="all_keys_exhausted")

    issued = auth_server(stack, "GET", "/_fake/issued")["tokens"]
    assert len(issued) >= 8
    assert not [t for t in issued for text in answers if t in text]
    stack.stop()  # every log complete
    files = [p for p in stack.root.rglob("*") if p.is_file()]
    assert any(".log" in p.name for p in files)
    found = [(p.name, t) for p in files for t in issued if t.encode() in p.read_bytes()]
    assert not found, found


def test_a_revoked_refresh_token_is_token_refresh_failed(corp_stack):
    stack = corp_stack
    # An OAuth provider's credentials are token sets: a plain key is refused, naming `secret`.
    plain = httpx.post(stack.edge_url + "/api/credentials", timeout=10,
                       headers={"authorization": f"Bearer {stack.master_key}"},
                       json={"provider": "corp", "secret": "sk-not-a-token-set"})
    assert_openai_error(plain, 400, param="secret")
    before_login = time.time()
    login(stack)
    assert chat(stack).status_code == 200
    auth_server(stack, "POST", "/_fake/revoke-refresh-tokens")  # the user revoked the grant at the provider
    wait_until_expired(before_login + 0.1)
    resp = chat(stack)
    assert_openai_error(resp, 503, code="token_refresh_failed")
    message = resp.json()["error"]["message"]
    assert "invalid_grant" in message and "'corp'" in message and "credentials login corp" in message
    issued = auth_server(stack, "GET", "/_fake/issued")["tokens"]
    assert not [t for t in issued if t in resp.text]
