"""switchboard.yaml: env expansion, validation messages naming the field path, provider defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from switchboard_common.errors import NotFound

from switchboard_router import config
from switchboard_router.domain import Endpoint
from switchboard_router.routing import Routes, TimeoutDefaults

ROOT_FILE = Path(__file__).resolve().parents[4] / "switchboard.yaml"
DEFAULTS = TimeoutDefaults(total_seconds=600, read_seconds=60, connect_seconds=10)


def _problems(raw: dict, env: dict | None = None) -> list[tuple[str, str]]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(raw, env or {})
    return info.value.problems


def _one(kind: str = "openai", **extra) -> dict:
    return {"providers": {"p": {"type": kind, "base_url": "http://x/v1", "api_key": "k"} | extra},
            "models": [{"name": "m", "deployments": [{"provider": "p"}]}]}


def test_env_expansion_forms():
    raw = {"providers": {"p": {"type": "openai", "base_url": "${BASE:-http://default/v1}",
                               "api_key": "${KEY}", "headers": {"X-Cost": "$$5", "X-Team": "${TEAM:-}"}}},
           "models": [{"name": "m", "deployments": [{"provider": "p"}]}]}
    spec = config.parse(raw, {"KEY": "secret"}).providers["p"]
    assert (spec.base_url, spec.api_key) == ("http://default/v1", "secret")
    assert spec.headers == {"X-Cost": "$5", "X-Team": ""}
    spec = config.parse(raw, {"KEY": "secret", "BASE": "http://other/v1/"}).providers["p"]
    assert spec.base_url == "http://other/v1"  # trailing slash dropped
    assert _problems(raw) == [("providers.p.api_key", "environment variable KEY is not set "
                                                      "(write ${KEY:-} to make it optional)")]


def test_errors_name_the_field_path():
    raw = _one()
    raw["models"] = [{"name": "a", "deployments": [{"provider": "p"}]},
                     {"name": "b", "deployments": [{"provider": "p"}]},
                     {"name": "c", "deployments": [{"provider": "opnai"}]}]
    assert _problems(raw) == [("models[2].deployments[0].provider",
                               "unknown provider 'opnai' (known: p)")]
    problems = dict(_problems(_one(bse_url="x")))
    assert problems == {"providers.p.bse_url": "unknown field"}
    raw = _one()
    raw["models"][0]["deployments"][0]["weight"] = 0
    assert [p for p, _ in _problems(raw)] == ["models[0].deployments[0].weight"]
    assert _problems(_one(kind="lokal")) == [("providers.p.type", "unknown provider type 'lokal' "
                                              "(known: anthropic, azure, bedrock, gemini, local, "
                                              "openai, vertex)")]


@pytest.mark.parametrize("section, issue", [("budgets", "/api/billing/budget")])
def test_sections_nothing_reads_yet_are_refused_by_name(section, issue):
    problems = _problems({**_one(), section: {"gpt-4o": {"input_micros_usd_per_token": 5}}})
    assert [path for path, _ in problems] == [section]
    assert "not supported yet" in problems[0][1] and issue in problems[0][1]


def test_prices_are_left_to_billing_which_validates_them():
    # The router takes the section without reading it; billing's own start refuses a bad one
    # (services/billing/tests/unit/test_billing_price_config.py).
    parsed = config.parse({**_one(), "prices": {"models": {"m": {"input": 1, "output": 2}}}}, {})
    # The file's models, then the catalog presets' "<vendor>/*" routes (disabled: no keys here).
    assert [m.name for m in parsed.models if "/" not in m.name] == ["m"]


def test_cross_field_checks():
    raw = _one()
    raw["models"] += [{"name": "m", "deployments": [{"provider": "p"}]},
                      {"name": "x*", "deployments": [{"provider": "p"}]},
                      {"name": "d", "deployments": [{"provider": "p"}, {"provider": "p"}]}]
    assert dict(_problems(raw)) == {
        "models[1].name": "'m' is already defined at models[0].name",
        "models[2].name": "'x*': a wildcard must be written '<prefix>/*'",
        "models[3].deployments[1].name": "'p/d' appears twice in this model; give it a `name`",
    }
    raw = {"providers": {"p": {"type": "openai"}}, "models": []}
    assert _problems(raw) == [("providers.p.base_url", "required: an http:// or https:// URL")]


def test_vendor_fills_base_url_key_and_quirks():
    raw = {"providers": {"g": {"vendor": "groq"}, "m": {"vendor": "mistral"},
                         "o": {"vendor": "ollama"}}, "models": []}
    cfg = config.parse(raw, {"GROQ_API_KEY": "gk", "OLLAMA_BASE_URL": "http://box:11434/v1"})
    groq, mistral, ollama = cfg.providers["g"], cfg.providers["m"], cfg.providers["o"]
    assert (groq.type, groq.base_url, groq.api_key, groq.enabled) == (
        "openai", "https://api.groq.com/openai/v1", "gk", True)
    assert (mistral.enabled, mistral.key_env, mistral.stream_usage) == (False, "MISTRAL_API_KEY", False)
    assert (ollama.enabled, ollama.base_url) == (True, "http://box:11434/v1")  # needs no key
    assert _problems({"providers": {"g": {"vendor": "grok"}}, "models": []})[0][0] == "providers.g.vendor"


def test_the_default_file_works_with_and_without_keys():
    bare = config.load(ROOT_FILE, {})
    assert [n for n, s in bare.providers.items() if s.enabled] == ["local"]
    routes = Routes(bare, _providers(bare), DEFAULTS, created=1)
    assert {m["id"] for m in _listed(routes)} == {"switchboard-local", "switchboard-local-embed"}
    with pytest.raises(NotFound) as info:
        routes.plan("gpt-4o-mini", Endpoint.CHAT)
    assert info.value.code == "model_not_found" and "OPENAI_API_KEY" in info.value.message
    with pytest.raises(NotFound) as info:
        routes.plan("groq/llama-3.1-8b-instant", Endpoint.CHAT)
    assert "GROQ_API_KEY" in info.value.message

    keyed = config.load(ROOT_FILE, {"OPENAI_API_KEY": "sk-x"})
    routes = Routes(keyed, _providers(keyed), DEFAULTS, created=1)
    listed = {m["id"]: m["owned_by"] for m in _listed(routes)}
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small"):
        assert listed[name] == "openai"
    target, = routes.plan("openai/gpt-5-preview", Endpoint.CHAT)
    assert (target.upstream_model, target.deployment.timeout_seconds) == ("gpt-5-preview", 600)


def test_yaml_errors_and_missing_file(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(bad, {})


def _providers(cfg: config.Config) -> dict:
    from switchboard_router.providers.local import LocalProvider
    from switchboard_router.codecs.openai import OpenAICodec
    from switchboard_router.providers.remote import RemoteProvider

    return {name: LocalProvider(None) if spec.type == "local" else RemoteProvider(OpenAICodec(None), None, None)
            for name, spec in cfg.providers.items() if spec.enabled}


def _listed(routes: Routes) -> list[dict]:
    import orjson

    return orjson.loads(routes.listing())["data"]


def test_default_guardrail_policies_are_named_by_id():
    parsed = config.parse({**_one(), "guardrails": {"default_policy_ids": ["pol_a", "pol_a"]}}, {})
    assert parsed.default_guardrail_policy_ids == ("pol_a",)
    assert config.parse(_one(), {}).default_guardrail_policy_ids == ()
    assert [p for p, _ in _problems({**_one(), "guardrails": {"default_policy_ids": ["no pol"]}})] == [
        "guardrails.default_policy_ids[0]"]
    assert [p for p, _ in _problems({**_one(), "guardrails": {"policies": []}})] == [
        "guardrails.policies"]


def test_a_failure_rate_window_smaller_than_its_minimum_of_calls_is_refused():
    raw = _one() | {"routing": {"failure_rate_window": 5, "failure_rate_min_calls": 10}}
    ((where, message),) = _problems(raw)
    assert where == "routing" and "failure_rate_min_calls must not exceed failure_rate_window" in message


def test_the_cache_section_and_a_group_that_caches_by_default():
    raw = _one()
    raw["models"][0]["cache"] = True
    raw["models"].append({"name": "n", "aliases": ["n-alias"], "deployments": [{"provider": "p"}]})
    raw["cache"] = {"backend": "redis", "redis_url": "${REDIS_URL}", "ttl_seconds": 60}
    parsed = config.parse(raw, {"REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert (parsed.cache.backend, parsed.cache.redis_url, parsed.cache.ttl_seconds) == (
        "redis", "redis://127.0.0.1:6379/3", 60)
    routes = Routes(parsed, {"p": _Adapter()}, DEFAULTS, created=0)
    assert routes.cache_group("m") == ("m", True)
    assert routes.cache_group("n-alias") == ("n", False)  # an alias keys like its group
    assert config.parse(_one(), {}).cache.backend == "memory"  # the default


class _Adapter:
    endpoints = frozenset(Endpoint)


@pytest.mark.parametrize("section, where", [
    ({"backend": "memory", "tll_seconds": 5}, "cache.tll_seconds"),
    ({"backend": "memcached"}, "cache.backend"),
    ({"backend": "redis"}, "cache"),
    ({"backend": "redis", "redis_url": "http://x"}, "cache"),
    ({"backend": "redis", "redis_url": "redis://x", "max_entries": 5}, "cache"),
    ({"redis_url": "redis://x"}, "cache"),
    ({"ttl_seconds": 0}, "cache.ttl_seconds"),
    ({"max_entries": 0}, "cache.max_entries"),
])
def test_a_bad_cache_section_is_refused_naming_the_field(section, where):
    raw = _one()
    raw["cache"] = section
    assert [path for path, _ in _problems(raw)] == [where]


def test_a_bad_group_cache_setting_is_refused():
    raw = _one()
    raw["models"][0]["cache"] = "sometimes"
    assert [path for path, _ in _problems(raw)] == ["models[0].cache"]


def test_responses_are_stored_unless_the_file_says_not_to():
    assert config.parse(_one(), {}).store_responses is True  # OpenAI's default
    assert config.parse({**_one(), "responses": {"store": False}}, {}).store_responses is False
    assert [p for p, _ in _problems({**_one(), "responses": {"store": "sometimes"}})] == ["responses.store"]
    assert [p for p, _ in _problems({**_one(), "responses": {"retention_days": 3}})] == [
        "responses.retention_days"]  # memory's SWITCHBOARD_MEMORY_RESPONSE_TTL_SECONDS holds it
