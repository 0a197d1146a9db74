"""A deployment's own credentials (`api_key`, `api_keys`, `key_selection`, `oauth` on a
`models[].deployments[]` entry): served by a provider of its own, `<provider>@<name>`, its
provider's entry with those credentials instead; checked at start with errors naming the
deployment's fields."""

from __future__ import annotations

import pytest

from switchboard_router import config

ENV = {"TEAM_A_KEY": "sk-team-a-0123456789", "TEAM_B_KEY": "sk-team-b-0123456789",
       "SHARED_KEY": "sk-shared-0123456789", "CID": "cid", "CS": "cs"}


def _raw(*deployments: dict) -> dict:
    return {"providers": {"openai": {"type": "openai", "base_url": "https://api.openai.com/v1",
                                     "api_key": "${SHARED_KEY}", "timeout_seconds": 42}},
            "models": [{"name": "gpt", "deployments": list(deployments)}]}


def _problems(raw: dict, env: dict = ENV) -> dict[str, str]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(raw, env)
    return dict(info.value.problems)


def test_a_deployment_with_its_own_keys_gets_a_provider_of_its_own():
    cfg = config.parse(_raw(
        {"provider": "openai", "model": "gpt-4o"},
        {"provider": "openai", "model": "gpt-4o", "name": "team-a",
         "api_keys": ["${TEAM_A_KEY}", {"key": "${TEAM_B_KEY}", "weight": 2}],
         "key_selection": "least_recently_throttled"}), ENV)
    shared, own = cfg.models[0].deployments
    assert shared.provider == "openai" and own.provider == "openai@team-a" and own.name == "team-a"
    spec = cfg.providers["openai@team-a"]
    assert [k.secret for k in spec.api_keys] == ["sk-team-a-0123456789", "sk-team-b-0123456789"]
    assert [k.weight for k in spec.api_keys] == [1, 2]
    assert spec.key_selection == "least_recently_throttled" and spec.key_env == "TEAM_A_KEY"
    # Everything but the credentials is its provider's.
    assert (spec.base_url, spec.timeout_seconds, spec.type) == ("https://api.openai.com/v1", 42, "openai")
    assert spec.enabled and spec.api_key == "sk-team-a-0123456789"
    assert cfg.providers["openai"].api_key == "sk-shared-0123456789"


def test_a_deployment_with_oauth_overrides_its_providers_key():
    cfg = config.parse(_raw({"provider": "openai", "name": "m2m", "oauth": {
        "grant": "client_credentials", "client_id": "${CID}", "client_secret": "${CS}",
        "token_url": "https://login.corp/token"}}), ENV)
    spec = cfg.providers["openai@m2m"]
    assert spec.oauth is not None and spec.oauth.grant == "client_credentials"
    assert spec.api_key == "" and spec.api_keys == () and spec.enabled
    one = config.parse(_raw({"provider": "openai", "name": "solo", "api_key": "${TEAM_A_KEY}"}), ENV)
    assert one.providers["openai@solo"].api_key == "sk-team-a-0123456789"


def test_errors_name_the_deployments_fields():
    at = "models[0].deployments[0]"
    assert _problems(_raw({"provider": "openai", "api_keys": ["${TEAM_A_KEY}"]})) == {
        f"{at}.name": "required for a deployment with credentials of its own (they are known as "
                      "'<provider>@<name>')"}
    assert _problems(_raw({"provider": "openai", "name": "a", "api_keys": ["${TEAM_A_KEY}", "${TEAM_A_KEY}"]})) == {
        f"{at}.api_keys[1]": "the same key as api_keys[0]"}
    assert _problems(_raw({"provider": "openai", "name": "a", "api_key": "${TEAM_A_KEY}",
                           "api_keys": ["${TEAM_B_KEY}"]})) == {
        f"{at}.api_keys": "give either api_key or api_keys, not both"}
    assert _problems(_raw({"provider": "openai", "name": "a", "key_selection": "least_recently_throttled"})) == {
        f"{at}.key_selection": "only for a provider with api_keys"}
    assert _problems(_raw({"provider": "openai", "name": "a", "oauth": {
        "grant": "client_credentials", "client_id": "${CID}", "token_url": "https://login.corp/token"}})) == {
        f"{at}.oauth.client_secret": "required for grant client_credentials (RFC 6749 §4.4: a "
                                     "confidential client)"}
    assert list(_problems(_raw({"provider": "openai", "name": "a", "api_keys": [{"key": "k", "weight": 0}]}))) == [
        f"{at}.api_keys[0].weight"]
    problems = _problems(_raw({"provider": "openai", "name": "a", "api_keys": ["${UNSET_KEY}"]}))
    assert list(problems) == [f"{at}.api_keys[0]"]
    two = _raw({"provider": "openai", "name": "a", "api_keys": ["${TEAM_A_KEY}"]})
    two["models"].append({"name": "other", "deployments": [
        {"provider": "openai", "name": "a", "api_keys": ["${TEAM_B_KEY}"]}]})
    assert _problems(two) == {
        "models[1].deployments[0].name": "'openai@a' already has credentials of its own at "
                                         "models[0].deployments[0]: name this deployment otherwise"}
    local = {"providers": {"local": {"type": "local"}},
             "models": [{"name": "m", "deployments": [{"provider": "local", "name": "x", "api_keys": ["k"]}]}]}
    assert _problems(local) == {"models[0].deployments[0].api_keys": "provider type 'local' takes no key"}


def test_a_deployment_without_credentials_keeps_its_provider():
    cfg = config.parse(_raw({"provider": "openai", "name": "plain"}), ENV)
    assert cfg.models[0].deployments[0].provider == "openai"
    assert not [name for name in cfg.providers if "@" in name]
