"""`switchboard credentials login`: the device flow against the fake authorization server in its
own process (pending, slow_down, then tokens; PKCE S256), the tokens stored through the admin API
and never printed; denied and expired logins; `revoke`."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from cli_fakes import api_error

from switchboard_cli import device_login

from tests.fakes.process import fake_process

CLIENT_ID = "sb-cli-test-client"
CREDENTIAL = {"credential_id": "pcred_0123456789abcdef01234567", "provider": "corp",
              "hint": "oauth:1a2b3c4d", "weight": 1, "created_at": "2026-12-01T12:00:00Z"}
SCALE = "0.04"  # waits of 5 s become 0.2 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fake_process("tests.fakes.oauth_fake", tmp_path_factory.mktemp("oauth"), "--client-id",
                      CLIENT_ID) as url:
        yield url


def configure(url: str, **settings) -> None:
    httpx.post(f"{url}/_fake/config", json={"slow_down_status": 400, **settings}).raise_for_status()


def stats(url: str) -> dict:
    return httpx.get(f"{url}/_fake/stats").json()


@pytest.fixture
def config_file(tmp_path, server):
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump({"providers": {"corp": {
        "type": "openai", "base_url": "http://corp/v1",
        "oauth": {"client_id": "${CORP_CLIENT_ID}", "client_secret": "${CORP_CLIENT_SECRET:-}",
                  "token_url": f"{server}/token", "device_authorization_url": f"{server}/device/code",
                  "scopes": ["model.completion"], "pkce": True}}}}))
    return path


def login(run, config_file, *extra):
    return run("credentials", "login", "corp", "--config", str(config_file), *extra,
               env={"CORP_CLIENT_ID": CLIENT_ID, "SWITCHBOARD_DEVICE_POLL_SCALE": SCALE})


@pytest.mark.parametrize("slow_down_status", [400, 429])
def test_login_polls_through_pending_and_slow_down_then_stores_the_tokens(
        run, gateway, server, config_file, slow_down_status):
    configure(server, device_script=["authorization_pending", "slow_down", "token"],
              slow_down_status=slow_down_status)
    gateway.answers[("POST", "/api/credentials")] = (200, CREDENTIAL)
    before = stats(server)
    result = login(run, config_file)
    assert result.exit_code == 0, result.output
    after = stats(server)
    assert "enter the code" in result.output and f"{server}/device" in result.output
    assert CREDENTIAL["credential_id"] in result.output
    # Three polls, the interval (5 s, scaled) respected and grown by 5 s after slow_down.
    polls = after["polls"][len(before["polls"]):]
    assert [p["answer"] for p in polls] == ["authorization_pending", "slow_down", "token"]
    first_gap, second_gap = polls[1]["at"] - polls[0]["at"], polls[2]["at"] - polls[1]["at"]
    assert first_gap >= 5 * float(SCALE) * 0.9
    assert second_gap >= 10 * float(SCALE) * 0.9  # 5 s + 5 s: slow_down was honoured
    # Each poll carried the code_verifier of the S256 challenge, as the server checked.
    assert after["pkce_verified"] == before["pkce_verified"] + 3
    # The token answer went to the admin API, and to nowhere on the terminal.
    body = gateway.body()
    assert (body["provider"], body["weight"]) == ("corp", 1)
    tokens = json.loads(body["secret"])
    assert tokens["access_token"].startswith("at-") and tokens["refresh_token"].startswith("rt-")
    assert tokens["access_token"] not in result.output and tokens["refresh_token"] not in result.output


@pytest.mark.parametrize(("answer", "says"), [("access_denied", "denied"),
                                              ("expired_token", "expired")])
def test_a_denied_or_expired_login_stores_nothing(run, gateway, server, config_file, answer, says):
    configure(server, device_script=["authorization_pending", answer])
    result = login(run, config_file)
    assert result.exit_code == 1 and says in result.output and answer in result.output
    assert not [r for r in gateway.requests if r.method == "POST"]


def test_login_needs_the_providers_oauth_section(run, tmp_path):
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump({"providers": {"corp": {"type": "openai", "api_key": "sk-x"}}}))
    result = run("credentials", "login", "corp", "--config", str(path))
    assert result.exit_code == 1 and "no `oauth:` section" in result.output
    result = run("credentials", "login", "other", "--config", str(path))
    assert result.exit_code == 1 and "no provider 'other'" in result.output


def test_login_names_a_missing_variable(run, config_file):
    result = run("credentials", "login", "corp", "--config", str(config_file))
    assert result.exit_code == 1
    assert "providers.corp.oauth.client_id: the environment variable CORP_CLIENT_ID is not set" in result.output


def test_a_refused_store_is_the_gateways_error(run, gateway, server, config_file):
    configure(server, device_script=["token"])
    gateway.answers[("POST", "/api/credentials")] = (403, api_error(
        "Provider credentials need an admin key.", code="admin_key_required"))
    result = login(run, config_file)
    assert result.exit_code == 1 and "admin_key_required" in result.output


def test_revoke_deletes_the_credential(run, gateway):
    path = f"/api/credentials/{CREDENTIAL['credential_id']}"
    gateway.answers[("DELETE", path)] = (200, CREDENTIAL)
    result = run("credentials", "revoke", CREDENTIAL["credential_id"], "--yes")
    assert result.exit_code == 0 and "Revoked pcred_" in result.output
    assert gateway.requests[-1].method == "DELETE" and gateway.requests[-1].url.path == path


def test_a_verifier_that_does_not_match_the_challenge_is_refused(server, config_file):
    """The server really checks PKCE: the right challenge with another verifier is invalid_grant."""
    configure(server, device_script=["token"])
    client = device_login.read_client(config_file, "corp", {"CORP_CLIENT_ID": CLIENT_ID})
    _, challenge = device_login.pkce_pair()
    other, _ = device_login.pkce_pair()
    with device_login._http(client) as http:
        device = device_login.start(client, http, challenge)
        with pytest.raises(device_login.LoginFailed, match="invalid_grant"):
            device_login.poll(client, http, device, other, scale=0.001)


def test_a_deployments_own_oauth_client_is_read_by_its_router_name(tmp_path):
    path = tmp_path / "switchboard.yaml"
    oauth = {"client_id": "${TEAM_CLIENT_ID}", "token_url": "https://login.team/token",
             "device_authorization_url": "https://login.team/device"}
    path.write_text(yaml.safe_dump({
        "providers": {"corp": {"type": "openai", "base_url": "http://corp/v1", "api_key": "sk-x"}},
        "models": [{"name": "m", "deployments": [{"provider": "corp"},
                                                 {"provider": "corp", "name": "team", "oauth": oauth}]}]}))
    client = device_login.read_client(path, "corp@team", {"TEAM_CLIENT_ID": "team-cid"})
    assert (client.provider, client.client_id, client.token_url) == ("corp@team", "team-cid",
                                                                     "https://login.team/token")
    with pytest.raises(device_login.LoginFailed, match=r"models\[0\]\.deployments\[1\]\.oauth\.client_id"):
        device_login.read_client(path, "corp@team", {})
    with pytest.raises(device_login.LoginFailed, match="no deployment named 'other'"):
        device_login.read_client(path, "corp@other", {})


def test_a_client_credentials_provider_needs_no_login(tmp_path):
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump({"providers": {"corp": {"type": "openai", "base_url": "http://corp/v1", "oauth": {
        "grant": "client_credentials", "client_id": "cid", "client_secret": "cs",
        "token_url": "https://login.corp/token"}}}}))
    with pytest.raises(device_login.LoginFailed, match="client-credentials grant"):
        device_login.read_client(path, "corp", {})
