"""Which header carries a credential, per wire format and kind: a key goes where the format's keys
go (OpenAI's Bearer, Azure's api-key, Anthropic's x-api-key, Gemini's x-goog-api-key); an OAuth
access token is always `Authorization: Bearer`, with the key header left out. Built as the router
builds them: switchboard.yaml parsed, the format's codec wrapped in the OAuth codec."""

from __future__ import annotations

import time

import pytest

from switchboard_router import config
from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.oauth import MemoryVault, OAuthCodec, OAuthToken, TokenSet, no_lease
from switchboard_router.providers.base import Call

OAUTH = {"client_id": "cid", "client_secret": "cs", "token_url": "https://auth.corp/token",
         "grant": "client_credentials"}
KEY_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")
# type, provider settings, the header a key goes in, and the key as it is sent there
FORMATS = [
    ("openai", {"base_url": "https://api.corp/v1"}, "authorization", "Bearer sk-corp-key"),
    ("azure", {"base_url": "https://corp.openai.azure.com", "api_version": "2024-10-21"},
     "api-key", "sk-corp-key"),
    ("anthropic", {"base_url": "https://api.anthropic.com"}, "x-api-key", "sk-corp-key"),
    ("gemini", {"base_url": "https://generativelanguage.googleapis.com"}, "x-goog-api-key", "sk-corp-key"),
]
BODIES = {"openai": {}, "azure": {}, "anthropic": {"max_tokens": 16}, "gemini": {}}


def _spec(kind: str, settings: dict, **credentials):
    raw = {"providers": {"corp": {"type": kind, **settings, **credentials}},
           "models": [{"name": "m", "deployments": [{"provider": "corp", "model": "x-model"}]}]}
    return config.parse(raw, {}).providers["corp"]


def _headers(codec, kind: str) -> dict[str, str]:
    dep = Deployment(route="m", name="corp/x-model", provider="corp", model="x-model", weight=1,
                     timeout_seconds=60, read_timeout_seconds=60, connect_timeout_seconds=10)
    call = Call(endpoint=Endpoint.CHAT, body={"model": "m", "messages": [{"role": "user", "content": "hi"},
                                                                          ], **BODIES[kind]},
                model="m", upstream_model="x-model", deployment=dep, request_id="r1")
    _, headers, _ = codec.request(call)
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize(("kind", "settings", "key_header", "sent"), FORMATS)
def test_a_key_goes_in_the_formats_key_header(kind, settings, key_header, sent):
    spec = _spec(kind, settings, api_key="sk-corp-key")
    headers = _headers(_codec_module(kind).codec(spec), kind)
    assert headers[key_header] == sent
    assert [h for h in KEY_HEADERS if h in headers] == [key_header]


@pytest.mark.parametrize(("kind", "settings", "key_header", "sent"), FORMATS)
async def test_an_oauth_token_is_a_bearer_token_whatever_the_key_header(kind, settings, key_header, sent):
    spec = _spec(kind, settings, oauth=OAUTH)
    assert spec.oauth is not None and spec.credential == "api_key"
    token = OAuthToken("corp:client_credentials", "corp", spec.oauth,
                       TokenSet(access_token="at-corp-token", refresh_token=None,
                                expires_at=time.time() + 3600, obtained_at=time.time()),
                       MemoryVault(), no_lease)
    codec = OAuthCodec(_codec_module(kind).codec, spec, token)
    await codec.authorize()
    headers = _headers(codec, kind)
    assert headers["authorization"] == "Bearer at-corp-token"
    assert [h for h in KEY_HEADERS if h in headers] == ["authorization"]


def _codec_module(kind: str):
    import importlib

    return importlib.import_module(f"switchboard_router.codecs.{kind}")


@pytest.mark.parametrize("kind", ["vertex", "bedrock"])
def test_formats_with_their_own_credentials_refuse_oauth(kind):
    settings = {"base_url": "https://x.example"} if kind == "vertex" else {
        "base_url": "https://bedrock-runtime.us-east-1.amazonaws.com", "region": "us-east-1"}
    raw = {"providers": {"corp": {"type": kind, **settings, "oauth": OAUTH}},
           "models": [{"name": "m", "deployments": [{"provider": "corp"}]}]}
    with pytest.raises(config.ConfigError) as caught:
        config.parse(raw, {})
    assert [p for p, _ in caught.value.problems] == ["providers.corp.oauth"]
