"""switchboard.yaml's `oauth:` section: read from the environment, every key enforced or refused."""

from __future__ import annotations

import pytest

from switchboard_router import config
from switchboard_router.domain import OAuthSpec


def _raw(oauth: dict, **provider) -> dict:
    return {"providers": {"corp": {"type": "openai", "base_url": "http://corp/v1", "oauth": oauth,
                                   **provider}},
            "models": [{"name": "m", "deployments": [{"provider": "corp"}]}]}


OAUTH = {"client_id": "${CORP_CLIENT_ID}", "client_secret": "${CORP_CLIENT_SECRET:-}",
         "token_url": "https://auth.corp/token", "scopes": ["model.completion"],
         "device_authorization_url": "https://auth.corp/device/code", "pkce": True}


def _problems(raw: dict, env: dict) -> list[tuple[str, str]]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(raw, env)
    return info.value.problems


def test_oauth_provider_takes_its_tokens_from_stored_credentials():
    spec = config.parse(_raw(OAUTH), {"CORP_CLIENT_ID": "cid"}).providers["corp"]
    assert spec.oauth == OAuthSpec(client_id="cid", client_secret=None, token_url="https://auth.corp/token",
                                   scopes=("model.completion",),
                                   device_authorization_url="https://auth.corp/device/code", pkce=True)
    # Enabled with no key in the file: its keys are the token sets a login stores.
    assert spec.enabled and spec.api_keys == () and spec.api_key == ""
    secret = config.parse(_raw(OAUTH), {"CORP_CLIENT_ID": "cid", "CORP_CLIENT_SECRET": "s3"})
    assert secret.providers["corp"].oauth.client_secret == "s3"
    assert "s3" not in repr(secret.providers["corp"].oauth)


def test_unknown_and_bad_oauth_keys_are_errors_naming_them():
    env = {"CORP_CLIENT_ID": "cid"}
    problems = dict(_problems(_raw({**OAUTH, "audience": "x"}), env))
    assert problems == {"providers.corp.oauth.audience": "unknown field"}
    problems = dict(_problems(_raw({**OAUTH, "token_url": "ftp://nope"}), env))
    assert "providers.corp.oauth.token_url" in problems
    problems = dict(_problems(_raw({k: v for k, v in OAUTH.items() if k != "token_url"}), env))
    assert "providers.corp.oauth.token_url" in problems
    assert dict(_problems(_raw(OAUTH), {})) == {
        "providers.corp.oauth.client_id": "environment variable CORP_CLIENT_ID is not set "
                                          "(write ${CORP_CLIENT_ID:-} to make it optional)"}


def test_oauth_only_where_it_can_be_sent_and_not_beside_keys():
    env = {"CORP_CLIENT_ID": "cid"}
    assert dict(_problems(_raw(OAUTH, api_key="sk-1"), env)) == {
        "providers.corp.oauth": "give either api_key/api_keys or oauth, not both"}
    # A format whose keys go in another header still takes OAuth (sent as Bearer by its codec).
    assert config.parse(_raw(OAUTH, auth_header="api-key"), env).providers["corp"].oauth is not None
    raw = _raw(OAUTH)
    raw["providers"]["corp"]["type"] = "bedrock"
    raw["providers"]["corp"]["region"] = "us-east-1"
    assert "providers.corp.oauth" in dict(_problems(raw, env))


CLIENT_CREDENTIALS = {"grant": "client_credentials", "client_id": "${CORP_CLIENT_ID}",
                      "client_secret": "${CORP_CLIENT_SECRET}", "token_url": "https://auth.corp/token",
                      "scopes": ["model.completion"]}


def test_the_client_credentials_grant_needs_a_secret_and_no_login_fields():
    env = {"CORP_CLIENT_ID": "cid", "CORP_CLIENT_SECRET": "cs"}
    spec = config.parse(_raw(CLIENT_CREDENTIALS), env).providers["corp"]
    assert spec.oauth is not None and spec.oauth.grant == "client_credentials"
    assert spec.enabled and spec.api_keys == ()
    assert dict(_problems(_raw({**CLIENT_CREDENTIALS, "client_secret": "${CORP_CLIENT_SECRET:-}"}),
                          {"CORP_CLIENT_ID": "cid"})) == {
        "providers.corp.oauth.client_secret": "required for grant client_credentials (RFC 6749 §4.4: "
                                              "a confidential client)"}
    for field, value in (("device_authorization_url", "https://auth.corp/device"), ("pkce", True)):
        problems = dict(_problems(_raw({**CLIENT_CREDENTIALS, field: value}), env))
        assert list(problems) == [f"providers.corp.oauth.{field}"]
    assert "providers.corp.oauth.grant" in dict(_problems(_raw({**OAUTH, "grant": "password"}), env))
