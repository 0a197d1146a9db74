"""Provider presets: enabled by their credentials alone, `<vendor>/<model>` routed without
configuration, base URLs overridable, and the formats not built yet refused at start."""

from __future__ import annotations

import pytest
from switchboard_common.errors import NotFound

from switchboard_router import config
from switchboard_router.catalog import VENDORS
from switchboard_router.codecs import azure
from switchboard_router.codecs.openai import OpenAICodec
from switchboard_router.domain import Endpoint
from switchboard_router.providers import ADAPTERS
from switchboard_router.providers.local import LocalProvider
from switchboard_router.providers.remote import RemoteProvider
from switchboard_router.routing import Routes, TimeoutDefaults

BARE = {"providers": {"local": {"type": "local"}}, "models": []}
DEFAULTS = TimeoutDefaults(total_seconds=600, read_seconds=60, connect_seconds=10)


def _routes(cfg: config.Config) -> Routes:
    built = {n: LocalProvider(None) if s.type == "local" else RemoteProvider(OpenAICodec(None), None, None)
             for n, s in cfg.providers.items() if s.enabled}
    return Routes(cfg, built, DEFAULTS, created=1)


def test_a_key_variable_alone_enables_its_preset_and_its_names():
    cfg = config.parse(BARE, {"ANTHROPIC_API_KEY": "sk-ant", "GROQ_API_KEY": "gk",
                              "ANTHROPIC_BASE_URL": "http://fake-anthropic:1"})
    anthropic, groq = cfg.providers["anthropic"], cfg.providers["groq"]
    assert (anthropic.type, anthropic.base_url, anthropic.api_key, anthropic.enabled) == (
        "anthropic", "http://fake-anthropic:1", "sk-ant", True)
    assert (anthropic.api_version, anthropic.auth_header) == ("2023-06-01", "x-api-key")
    assert (groq.base_url, groq.auth_header) == ("https://api.groq.com/openai/v1", "authorization")
    assert cfg.providers["openai"].enabled is False  # no key: there, to say how to enable it
    routes = _routes(cfg)
    with pytest.raises(NotFound) as info:
        routes.plan("openai/gpt-4o", Endpoint.CHAT)
    assert "OPENAI_API_KEY" in info.value.message
    target, = routes.plan("anthropic/claude-3-7-sonnet-latest", Endpoint.CHAT)
    assert (target.deployment.provider, target.upstream_model) == ("anthropic", "claude-3-7-sonnet-latest")
    target, = routes.plan("groq/llama-3.1-8b-instant", Endpoint.CHAT)
    assert target.upstream_model == "llama-3.1-8b-instant"
    import orjson
    listed = {m["id"] for m in orjson.loads(routes.listing())["data"]}
    assert {f"anthropic/{m}" for m in VENDORS["anthropic"].models} <= listed


def test_presets_the_file_names_are_left_to_the_file():
    raw = {"providers": {"anthropic": {"type": "openai", "base_url": "http://proxy/v1", "api_key": "k"}},
           "models": [{"name": "anthropic/*", "deployments": [{"provider": "anthropic"}]}]}
    cfg = config.parse(raw, {"ANTHROPIC_API_KEY": "sk-ant"})
    assert cfg.providers["anthropic"].type == "openai"
    assert [m.name for m in cfg.models].count("anthropic/*") == 1
    assert [m.name for m in cfg.models if m.name.startswith("anthropic/")] == ["anthropic/*"]


def test_keyless_servers_are_enabled_by_their_base_url_and_azure_needs_its_endpoint():
    assert "ollama" not in config.parse(BARE, {}).providers  # a keyless server runs where its URL says
    cfg = config.parse(BARE, {"OLLAMA_BASE_URL": "http://box:11434/v1",
                              "AZURE_OPENAI_API_KEY": "az", "DASHSCOPE_API_KEY": "dk"})
    assert cfg.providers["ollama"].base_url == "http://box:11434/v1"
    assert cfg.providers["qwen"].base_url.endswith("/compatible-mode/v1")
    assert "azure" not in cfg.providers  # no AZURE_OPENAI_ENDPOINT: nowhere to send it
    cfg = config.parse(BARE, {"AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
                              "OPENAI_API_VERSION": "2025-04-01-preview"})
    spec = cfg.providers["azure"]
    assert (spec.type, spec.base_url, spec.api_version, spec.auth_header) == (
        "azure", "https://r.openai.azure.com", "2025-04-01-preview", "api-key")


def test_azure_lists_the_deployments_it_is_told_of_and_no_others():
    import orjson

    env = {"AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}
    bare = _routes(config.parse(BARE, env))
    assert not [m for m in orjson.loads(bare.listing())["data"] if m["id"].startswith("azure/")]
    assert bare.plan("azure/anything", Endpoint.CHAT)[0].upstream_model == "anything"  # still served
    told = _routes(config.parse(BARE, {**env, "AZURE_OPENAI_DEPLOYMENTS": "prod-chat, embed-small,"}))
    listed = [(m["id"], m["owned_by"]) for m in orjson.loads(told.listing())["data"] if m["id"].startswith("azure/")]
    assert listed == [("azure/prod-chat", "azure"), ("azure/embed-small", "azure")]
    target, = told.plan("azure/prod-chat", Endpoint.CHAT)
    assert (target.deployment.provider, target.upstream_model) == ("azure", "prod-chat")
    # A deployment the file routes to is listed by the file's name for it.
    named = {"providers": {"az": {"vendor": "azure"}},
             "models": [{"name": "gpt-4o", "deployments": [{"provider": "az", "model": "prod-chat"}]}]}
    assert [(m["id"], m["owned_by"]) for m in orjson.loads(_routes(config.parse(named, env)).listing())["data"]] == [
        ("gpt-4o", "azure")]


def test_bedrock_is_enabled_by_any_aws_credentials_with_its_region():
    cfg = config.parse(BARE, {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_REGION": "eu-west-3"})
    spec = cfg.providers["bedrock"]
    assert (spec.type, spec.enabled, spec.region, spec.api_key) == ("bedrock", True, "eu-west-3", "")
    assert spec.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    target, = _routes(cfg).plan("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", Endpoint.CHAT)
    assert (target.deployment.provider, target.upstream_model) == (
        "bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert config.parse(BARE, {"AWS_PROFILE": "dev"}).providers["bedrock"].enabled
    assert config.parse(BARE, {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}
                        ).providers["bedrock"].enabled
    assert config.parse(BARE, {"AWS_ACCESS_KEY_ID": "AK"}).providers["bedrock"].enabled is False
    spec = config.parse(BARE, {"AWS_BEARER_TOKEN_BEDROCK": "bk", "BEDROCK_BASE_URL": "http://fake:1",
                               "AWS_DEFAULT_REGION": "us-west-2"}).providers["bedrock"]
    assert (spec.enabled, spec.api_key, spec.base_url, spec.region) == (True, "bk", "http://fake:1", "us-west-2")
    assert config.parse(BARE, {"AWS_PROFILE": "dev"}).providers["bedrock"].region == "us-east-1"


def test_region_belongs_to_bedrock():
    cfg = config.parse({"providers": {"aws": {"vendor": "bedrock", "region": "ap-south-1"}}, "models": []},
                       {"AWS_PROFILE": "p", "AWS_REGION": "eu-west-1"})
    assert cfg.providers["aws"].base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    for provider, path in (({"type": "openai", "base_url": "http://x", "api_key": "k", "region": "us-east-1"},
                            "providers.p.region"),
                           ({"vendor": "bedrock", "region": "Mars"}, "providers.p.region")):
        with pytest.raises(config.ConfigError) as info:
            config.parse({"providers": {"p": provider}, "models": []}, {})
        assert info.value.problems[0][0] == path


def test_api_version_belongs_to_the_formats_that_read_it():
    with pytest.raises(config.ConfigError) as info:
        config.parse({"providers": {"p": {"type": "openai", "base_url": "http://x", "api_key": "k",
                                          "api_version": "2024-10-21"}}, "models": []}, {})
    assert info.value.problems[0][0] == "providers.p.api_version"
    assert all(a.build is not None or a.not_built for a in ADAPTERS.values())


def test_every_preset_names_a_known_format_and_a_documented_variable():
    for name, vendor in VENDORS.items():
        assert vendor.type in ADAPTERS, name
        assert vendor.base_url_env.endswith(("_BASE_URL", "_ENDPOINT")), name


def _azure(api_version: str, **kw):
    from switchboard_router.domain import Deployment, ProviderSpec
    from switchboard_router.providers.base import Call

    spec = ProviderSpec(name="azure", type="azure", base_url="https://r.openai.azure.com/", api_key="az-key",
                        headers={}, stream_usage=True, owned_by="azure", enabled=True, key_env=None,
                        timeout_seconds=None, read_timeout_seconds=None, connect_timeout_seconds=None,
                        api_version=api_version, **kw)
    dep = Deployment(route="azure/*", name="azure/*", provider="azure", model=None, weight=1,
                     timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)
    call = Call(endpoint=Endpoint.CHAT, body={"model": "azure/my-gpt", "messages": []}, model="azure/my-gpt",
                upstream_model="my-gpt", deployment=dep, request_id="r")
    return azure.codec(spec), call


def test_azure_classic_and_v1_paths_and_keys():
    codec, call = _azure("2024-10-21", auth_header="api-key")
    url, headers, _ = codec.request(call)
    assert url == "https://r.openai.azure.com/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"
    assert headers["api-key"] == "az-key" and "Authorization" not in headers
    codec, call = _azure("2024-10-21", auth_header="authorization")  # an Entra ID token
    assert codec.request(call).headers["Authorization"] == "Bearer az-key"
    codec, call = _azure("v1")
    url, headers, _ = codec.request(call)
    assert url == "https://r.openai.azure.com/openai/v1/chat/completions"
    assert headers["Authorization"] == "Bearer az-key"
    assert Endpoint.MODERATIONS not in codec.endpoints


def test_azure_stream_quirks_are_smoothed():
    import orjson

    from tests.fakes.azure_fake import PROMPT_FILTER_CHUNK

    codec, call = _azure("2024-10-21")
    relay = codec.relay(call, lambda t: len(t.split()))
    no_delta = b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"finish_reason":null,' \
               b'"content_filter_results":{}}]}\n\n'
    text = b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    out = relay.feed(PROMPT_FILTER_CHUNK + no_delta[:30]) + relay.feed(no_delta[30:] + text) + relay.finish()
    events = [orjson.loads(e[6:]) for e in out.split(b"\n\n") if e.startswith(b"data: {")]
    assert [e["choices"][0]["delta"] for e in events] == [{}, {"content": "hi"}]
    assert out.endswith(b"data: [DONE]\n\n") and relay.completion_tokens() == 1


def test_gemini_is_enabled_by_either_key_variable_and_vertex_by_its_key_file():
    cfg = config.parse(BARE, {"GEMINI_API_KEY": "g-key", "GEMINI_BASE_URL": "http://fake-gemini:1"})
    spec = cfg.providers["gemini"]
    assert (spec.type, spec.base_url, spec.api_key, spec.enabled) == ("gemini", "http://fake-gemini:1", "g-key", True)
    # google-genai reads GOOGLE_API_KEY first; so does the preset
    both = config.parse(BARE, {"GEMINI_API_KEY": "g-key", "GOOGLE_API_KEY": "goog-key"}).providers["gemini"]
    assert (both.api_key, both.base_url) == ("goog-key", "https://generativelanguage.googleapis.com")
    assert config.parse(BARE, {}).providers["gemini"].enabled is False
    target, = _routes(cfg).plan("gemini/gemini-2.5-flash", Endpoint.CHAT)
    assert (target.deployment.provider, target.upstream_model) == ("gemini", "gemini-2.5-flash")
    vertex = config.parse(BARE, {"GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json", "GOOGLE_CLOUD_PROJECT": "p1",
                                 "GOOGLE_CLOUD_LOCATION": "europe-west4"}).providers["vertex"]
    assert (vertex.api_key, vertex.project, vertex.location, vertex.enabled) == (
        "/keys/sa.json", "p1", "europe-west4", True)
    token = config.parse(BARE, {"GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.t", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
                                "GOOGLE_CLOUD_PROJECT": "p1"}).providers["vertex"]
    assert (token.api_key, token.enabled) == ("ya29.t", True)  # a plain access token, read first


def test_gemini_and_vertex_settings_are_checked():
    def problems(provider: dict) -> list:
        with pytest.raises(config.ConfigError) as info:
            config.parse({"providers": {"p": provider}, "models": []}, {})
        return info.value.problems
    assert problems({"vendor": "gemini", "api_version": "v2"})[0][0] == "providers.p.api_version"
    assert problems({"vendor": "gemini", "project": "p1"})[0][0] == "providers.p.project"
    assert problems({"vendor": "vertex", "location": "Not A Region"})[0][0] == "providers.p.location"
    ok = config.parse({"providers": {"p": {"vendor": "vertex", "api_key": "/k.json", "project": "p2",
                                           "location": "us-east5", "api_version": "v1beta1"}},
                       "models": []}, {}).providers["p"]
    assert (ok.project, ok.location, ok.api_version) == ("p2", "us-east5", "v1beta1")
