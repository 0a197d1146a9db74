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


async def test_embeddings_by_predict_with_vertexs_token_counts(fake, tmp_path):
    from openai.types import CreateEmbeddingResponse

    codec = vertex.codec(_spec(_key_file(tmp_path, fake.base_url + "/token"), fake.base_url))
    await codec.authorize()
    call = Call(endpoint=Endpoint.EMBEDDINGS, body={"model": "vertex/e", "input": ["one two", "three"],
                                                    "dimensions": 128},
                model="vertex/e", upstream_model="text-embedding-005", deployment=DEP, request_id="r1")
    url, headers, body = codec.request(call)
    assert url.endswith("/publishers/google/models/text-embedding-005:predict")
    assert orjson.loads(body) == {"instances": [{"content": "one two"}, {"content": "three"}],
                                  "parameters": {"autoTruncate": False, "outputDimensionality": 128}}
    from tests.fakes import gemini_embeddings

    reply = codec.response(call, orjson.dumps(gemini_embeddings.vertex_answer("text-embedding-005",
                                                                              orjson.loads(body))))
    data = CreateEmbeddingResponse.model_validate_json(reply.data)
    assert data.usage.prompt_tokens == 3 and reply.usage.prompt == 3
    assert len(data.data) == 2 and len(data.data[0].embedding) == 128
    single = Call(endpoint=Endpoint.EMBEDDINGS, body={"model": "vertex/e", "input": ["a", "b"]},
                  model="vertex/e", upstream_model="gemini-embedding-001", deployment=DEP, request_id="r1")
    with pytest.raises(errors.InvalidRequest) as info:  # Vertex's gemini-embedding takes one per call
        codec.request(single)
    assert info.value.param == "input"


def _json_file(tmp_path, name: str, info: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(info))
    return str(path)


async def test_authorized_user_credentials_refresh_at_their_token_endpoint(fake, tmp_path):
    fake.google_tokens.users["cid"] = ("csecret", "1//refresh")
    adc = {"type": "authorized_user", "client_id": "cid", "client_secret": "csecret",
           "refresh_token": "1//refresh", "quota_project_id": "adc-project", "token_uri": fake.base_url + "/token"}
    codec = vertex.codec(_spec(_json_file(tmp_path, "adc.json", adc), fake.base_url))
    await asyncio.gather(*(codec.authorize() for _ in range(4)))
    url, headers, _ = codec.request(_call())
    assert fake.tokens_issued == 1 and fake.google_tokens.valid(headers["Authorization"].removeprefix("Bearer "))
    assert "/projects/adc-project/" in url  # the ADC file's quota project, when none is set
    revoked = vertex.codec(_spec(_json_file(tmp_path, "revoked.json", {**adc, "refresh_token": "1//old"}),
                                 fake.base_url))
    with pytest.raises(errors.UpstreamError) as info:
        await revoked.authorize()
    assert info.value.http_status == 502 and info.value.code == "provider_auth_error"
    assert "authorized user" in info.value.message and "expired or revoked" not in info.value.message


async def test_workload_identity_trades_the_subject_token_at_the_sts(fake, tmp_path):
    fake.google_tokens.subject_tokens.add("oidc-subject-token")
    subject = tmp_path / "subject.jwt"
    subject.write_text("oidc-subject-token")
    config = {"type": "external_account", "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
              "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/q",
              "token_url": fake.base_url + "/sts", "credential_source": {"file": str(subject)}}
    codec = vertex.codec(_spec(_json_file(tmp_path, "wif.json", config), fake.base_url, project="wif-project"))
    await codec.authorize()
    url, headers, body = codec.request(_call())
    assert "/projects/wif-project/" in url and fake.tokens_issued == 1
    assert fake.google_tokens.valid(headers["Authorization"].removeprefix("Bearer "))
    subject.write_text("someone-else")  # a refresh with a subject token the STS refuses
    codec.token._credentials.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    with pytest.raises(errors.UpstreamError) as info:
        await codec.authorize()
    assert "workload identity" in info.value.message and info.value.http_status == 502
    subject.unlink()  # the source gone: still a clear 502, never a 500
    with pytest.raises(errors.UpstreamError):
        await codec.authorize()
    with pytest.raises(ConfigError) as config_error:  # federated credentials name no project
        vertex.codec(_spec(_json_file(tmp_path, "wif.json", config), fake.base_url))
    assert config_error.value.problems[0][0] == "providers.vertex.project"


async def test_a_plain_access_token_is_used_as_it_is(fake, tmp_path):
    codec = vertex.codec(_spec("ya29.a-token-from-gcloud", fake.base_url, project="p"))
    await codec.authorize()  # nothing to fetch
    _, headers, _ = codec.request(_call())
    assert headers["Authorization"] == "Bearer ya29.a-token-from-gcloud" and fake.tokens_issued == 0
    for info in ({"type": "impersonated_service_account"}, ["not", "an", "object"]):
        with pytest.raises(ConfigError) as error:
            vertex.codec(_spec(_json_file(tmp_path, "other.json", info), fake.base_url, project="p"))
        assert "service_account, authorized_user or external_account" in error.value.problems[0][1]
