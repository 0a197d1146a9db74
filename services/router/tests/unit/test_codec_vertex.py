"""The Vertex AI codec: a throwaway service account's JWT grant at the fake's token endpoint
(google-auth signs, the fake checks the RS256 signature), the token cached until near expiry and
fetched once for concurrent requests, off the event loop (the fake answering on this same loop
shows the loop was free), and Gemini's body on Vertex's paths."""

from __future__ import annotations

import asyncio
import datetime
import json

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from switchboard_common import errors

from switchboard_router.codecs import vertex
from switchboard_router.config import ConfigError
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from tests.fakes import gemini_fake

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
DEP = Deployment(route="m", name="vertex/m", provider="vertex", model=None, weight=1,
                 timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)


@pytest.fixture
async def fake():
    server = await gemini_fake.start_gemini_fake(vertex_public_key=PUBLIC)
    yield server
    await server.close()


def _key_file(tmp_path, token_uri: str, key=KEY) -> str:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "proj-from-key", "private_key_id": "k1", "client_id": "1",
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "client_email": "svc@proj-from-key.iam.gserviceaccount.com", "token_uri": token_uri}))
    return str(path)


def _spec(path: str, base_url: str, **kw) -> ProviderSpec:
    return ProviderSpec(name="vertex", type="vertex", base_url=base_url, api_key=path, headers={},
                        stream_usage=True, owned_by="google", enabled=True,
                        key_env="GOOGLE_APPLICATION_CREDENTIALS", timeout_seconds=None,
                        read_timeout_seconds=None, connect_timeout_seconds=None, **kw)


def _call(stream: bool = False) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": "vertex/x", "stream": stream, "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]},
        model="vertex/x", upstream_model="gemini-2.5-flash", deployment=DEP, request_id="r1")


async def test_one_token_for_concurrent_requests_then_a_new_one_near_expiry(fake, tmp_path):
    codec = vertex.codec(_spec(_key_file(tmp_path, fake.base_url + "/token"), fake.base_url,
                               location="us-central1"))
    await asyncio.gather(*(codec.authorize() for _ in range(8)))
    assert fake.tokens_issued == 1
    url, headers, body = codec.request(_call())
    assert url == (f"{fake.base_url}/v1/projects/proj-from-key/locations/us-central1/publishers/google/"
                   "models/gemini-2.5-flash:generateContent")
    assert headers["Authorization"].startswith("Bearer ya29.fake-") and "x-goog-api-key" not in headers
    gemini_fake.validate(orjson.loads(body))
    assert orjson.loads(body)["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    await codec.authorize()
    assert fake.tokens_issued == 1  # cached
    codec.token._credentials.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + \
        datetime.timedelta(seconds=60)  # within google-auth's refresh threshold
    await codec.authorize()
    assert fake.tokens_issued == 2
    stream_url, _, _ = codec.request(_call(stream=True))
    assert stream_url.endswith(":streamGenerateContent?alt=sse")


async def test_a_refused_grant_is_the_gateways_problem_and_says_nothing_secret(fake, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the key the fake knows
    codec = vertex.codec(_spec(_key_file(tmp_path, fake.base_url + "/token", other), fake.base_url))
    with pytest.raises(errors.UpstreamError) as info:
        await codec.authorize()
    assert info.value.http_status == 502 and info.value.code == "provider_auth_error"
    assert "PRIVATE KEY" not in info.value.message and "invalid_grant" not in info.value.message


def test_regional_hosts_project_and_unusable_key_files(tmp_path):
    assert vertex.base_url_for(vertex.DEFAULT_BASE_URL, "europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert vertex.base_url_for(vertex.DEFAULT_BASE_URL, "global") == vertex.DEFAULT_BASE_URL
    assert vertex.base_url_for("http://127.0.0.1:9", "europe-west4") == "http://127.0.0.1:9"
    path = _key_file(tmp_path, "http://127.0.0.1:9/token")
    codec = vertex.codec(_spec(path, vertex.DEFAULT_BASE_URL, project="explicit", api_version="v1beta1"))
    assert codec.prefix == ("https://aiplatform.googleapis.com/v1beta1/projects/explicit/locations/global/"
                            "publishers/google/models/")
    with pytest.raises(errors.UpstreamError):  # no token fetched yet: never sent without one
        codec.request(_call())
    (tmp_path / "bad.json").write_text('{"type": "authorized_user"}')
    for bad in (str(tmp_path / "missing.json"), str(tmp_path / "bad.json")):
        with pytest.raises(ConfigError) as info:
            vertex.codec(_spec(bad, vertex.DEFAULT_BASE_URL))
        (where, message), = info.value.problems
        assert where == "providers.vertex.api_key" and bad in message
