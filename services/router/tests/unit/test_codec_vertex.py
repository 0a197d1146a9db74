"""The Vertex AI codec: a throwaway service account's JWT grant at the fake's token endpoint
(google-auth signs, the fake checks the RS256 signature), the token cached until near expiry and
fetched once for concurrent requests, off the event loop (the fake answering on this same loop
shows the loop was free), and Gemini's body on Vertex's paths.

Claude on Vertex: a Claude model's calls go to Anthropic's publisher paths (rawPredict /
streamRawPredict, the model in the path, anthropic_version in the body), /v1/messages bodies as
they came and chat completions translated, and count_tokens to Vertex's count-tokens endpoint.
Each request the codec builds is posted to the fake Vertex, which checks it against Anthropic's
own types (and takes what the `anthropic` SDK's own AnthropicVertex client sends), and its
answers are read back through the codec."""

from __future__ import annotations

import asyncio
import datetime
import json

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from switchboard_common import errors

from switchboard_router.codecs import vertex
from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.config import ConfigError
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.inbound import native
from switchboard_router.providers.base import Call
from tests.fakes import gemini_fake, vertex_anthropic

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


# --- Claude on Vertex ------------------------------------------------------------------------

MODEL = "claude-sonnet-4-5@20250929"
CACHED_SYSTEM = [{"type": "text", "text": "You are careful.", "cache_control": {"type": "ephemeral"}}]


@pytest.fixture
async def codec(fake, tmp_path):
    made = vertex.codec(_spec(_key_file(tmp_path, fake.base_url + "/token"), fake.base_url,
                              location="us-east5"))
    await made.authorize()
    return made


def _native_call(body: dict, **kw) -> Call:
    read = native.read(body)
    return Call(endpoint=Endpoint.CHAT, body=read.chat, model="vertex/claude", upstream_model=MODEL,
                deployment=DEP, request_id="r1", native=read.body, **kw)


def _chat_call(stream: bool = False) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": "vertex/claude", "stream": stream, "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi there"}]},
        model="vertex/claude", upstream_model=MODEL, deployment=DEP, request_id="r1",
        include_usage=True)


async def _post(request) -> httpx.Response:
    url, headers, body = request
    async with httpx.AsyncClient() as client:
        return await client.post(url, headers=headers, content=body)


async def test_a_messages_body_goes_through_as_it_came_with_the_model_in_the_path(fake, codec):
    call = _native_call({"model": "vertex/claude", "max_tokens": 64, "system": CACHED_SYSTEM,
                         "metadata": {"user_id": "u-1"},
                         "messages": [{"role": "user", "content": "hello vertex"}]},
                        betas=("prompt-caching-2024-07-31",))
    request = codec.request(call)
    assert request.url == (f"{fake.base_url}/v1/projects/proj-from-key/locations/us-east5/publishers/"
                           f"anthropic/models/{MODEL}:rawPredict")
    sent = orjson.loads(request.body)
    assert sent["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent
    assert sent["system"] == CACHED_SYSTEM and sent["metadata"] == {"user_id": "u-1"}  # untouched
    assert request.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert request.headers["Authorization"].startswith("Bearer ya29.fake-")
    answer = await _post(request)
    assert answer.status_code == 200, answer.text
    reply = codec.response(call, answer.content)
    message = orjson.loads(reply.data)
    assert message["model"] == "vertex/claude" and message["content"][0]["text"] == "Echo: hello vertex"
    # the fake reads half the prompt from the cache when it sees cache_control
    assert reply.usage is not None and reply.usage.cached > 0
    assert reply.usage.prompt == message["usage"]["input_tokens"] + message["usage"]["cache_read_input_tokens"]


async def test_a_messages_stream_is_anthropics_own_sse_from_stream_raw_predict(fake, codec):
    call = _native_call({"model": "vertex/claude", "max_tokens": 64, "stream": True,
                         "messages": [{"role": "user", "content": "stream me please"}]})
    request = codec.request(call)
    assert request.url.endswith(f"/publishers/anthropic/models/{MODEL}:streamRawPredict")
    answer = await _post(request)
    assert answer.status_code == 200, answer.text
    relay = codec.relay(call, lambda text: len(text.split()))
    out = relay.feed(answer.content) + relay.finish()
    assert out.startswith(b"event: message_start\n") and b"event: message_stop" in out
    assert b'"model":"vertex/claude"' in out  # message_start names the client's model
    assert relay.usage is not None and relay.usage.completion == 4  # "Echo: stream me please"
    assert relay.error is None


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_to_claude_on_vertex_are_translated_to_anthropic(fake, codec, stream):
    call = _chat_call(stream)
    request = codec.request(call)
    sent = orjson.loads(request.body)
    assert "model" not in sent and sent["anthropic_version"] == "vertex-2023-10-16"
    assert sent["system"] == "Be terse." and sent["max_tokens"] == 64000  # claude-sonnet-4's limit
    answer = await _post(request)
    assert answer.status_code == 200, answer.text
    if not stream:
        completion = orjson.loads(codec.response(call, answer.content).data)
        assert completion["object"] == "chat.completion"
        assert completion["choices"][0]["message"]["content"] == "Echo: hi there"
        assert completion["choices"][0]["finish_reason"] == "stop"
        return
    relay = codec.relay(call, lambda text: len(text.split()))
    out = relay.feed(answer.content) + relay.finish()
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "Echo: hi there"
    assert out.rstrip().endswith(b"data: [DONE]") and relay.usage is not None


async def test_count_tokens_is_vertexs_own_count_with_the_model_in_the_body(fake, codec):
    body = {"model": "vertex/claude", "system": CACHED_SYSTEM,
            "messages": [{"role": "user", "content": "count these four words"}]}
    request = codec.count_request(native.read(body, counting=True).body, MODEL, ())
    assert request.url.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert orjson.loads(request.body)["model"] == MODEL
    answer = await _post(request)
    assert answer.status_code == 200, answer.text
    assert orjson.loads(answer.content) == {"input_tokens": 3 + 4}


async def test_the_fake_refuses_what_vertex_refuses_and_the_codec_maps_both_error_shapes(fake, codec):
    call = _native_call({"model": "vertex/claude", "max_tokens": 64,
                         "messages": [{"role": "user", "content": "hi"}]})
    url, headers, body = codec.request(call)
    for wrong in ({**orjson.loads(body), "model": MODEL},  # the model is the path's
                  {k: v for k, v in orjson.loads(body).items() if k != "anthropic_version"},
                  {**orjson.loads(body), "stream": True},  # a stream asked of :rawPredict
                  {**orjson.loads(body), "temperature_typo": 1}):  # Anthropic's types, extras refused
        answer = await _post((url, headers, orjson.dumps(wrong)))
        assert answer.status_code == 400 and answer.json()["type"] == "error", wrong
        assert isinstance(codec.error(400, answer.content, None), errors.InvalidRequest)
    answer = await _post((url, {**headers, "Authorization": "Bearer not-issued"}, body))
    assert answer.status_code == 401 and answer.json()[0]["error"]["status"] == "UNAUTHENTICATED"
    assert codec.error(401, answer.content, None).code == "provider_auth_error"
    busy = _native_call({"model": "vertex/claude", "max_tokens": 64,
                         "messages": [{"role": "user", "content": "busy [fake:error-529]"}]})
    answer = await _post(codec.request(busy))
    assert answer.status_code == 529
    assert isinstance(codec.error(529, answer.content, answer.headers.get("retry-after")), ProviderOverloaded)
    assert fake.requests[-1].path.endswith(":rawPredict")


def test_only_claude_models_take_messages_bodies(tmp_path):
    made = vertex.codec(_spec(_key_file(tmp_path, "http://127.0.0.1:9/token"), vertex.DEFAULT_BASE_URL))
    assert made.speaks_messages(MODEL) and made.speaks_messages("claude-opus-4-1@20250805")
    assert not made.speaks_messages("gemini-2.5-flash")
    assert made.anthropic_prefix.endswith("/locations/global/publishers/anthropic/models/")
    assert vertex_anthropic.VERSION == "vertex-2023-10-16"


async def test_the_fake_takes_what_the_anthropic_sdks_own_vertex_client_sends(fake, codec):
    """The fake checked against the official client (anthropic.AsyncAnthropicVertex), so that
    its rules are Vertex's wire and not this codec's idea of it."""
    import anthropic

    client = anthropic.AsyncAnthropicVertex(region="us-east5", project_id="sdk-project",
                                            access_token=codec.token.token,
                                            base_url=f"{fake.base_url}/v1", max_retries=0)
    made = await client.messages.create(model=MODEL, max_tokens=50, system=CACHED_SYSTEM,
                                        messages=[{"role": "user", "content": "from the sdk"}])
    assert made.content[0].text == "Echo: from the sdk" and made.usage.cache_read_input_tokens > 0
    assert fake.requests[-1].path == (f"/v1/projects/sdk-project/locations/us-east5/publishers/"
                                      f"anthropic/models/{MODEL}:rawPredict")
    async with client.messages.stream(model=MODEL, max_tokens=50, messages=[
            {"role": "user", "content": "streamed from the sdk"}]) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "Echo: streamed from the sdk"
    counted = await client.messages.count_tokens(model=MODEL, messages=[
        {"role": "user", "content": "three words here"}])
    assert counted.input_tokens == 3
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.create(model=MODEL, max_tokens=50, messages=[
            {"role": "assistant", "content": "assistant first is refused"}])
    await client.close()

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
