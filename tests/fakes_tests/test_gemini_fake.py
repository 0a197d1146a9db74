"""The fake Gemini API checked by Google's own code: what google-genai sends passes the fake's
validation (the official protos, unknown fields refused), and what the fake answers (whole,
streamed, errors) parses with both the protos and google-genai's types (extra fields forbidden);
Vertex mode gets its Bearer token by google-auth's service-account grant at the fake's endpoint."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google import genai
from google.auth import exceptions as google_exceptions
from google.auth.transport import requests as google_requests
from google.ai import generativelanguage_v1beta as gl
from google.genai import errors, types
from google.oauth2 import service_account
from google.protobuf import json_format

from tests.fakes import gemini_fake
from tests.fakes.gemini_fake import start_gemini_fake

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
TOOLS = [types.Tool(function_declarations=[
    types.FunctionDeclaration(name="weather", description="Weather", parameters_json_schema={
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    types.FunctionDeclaration(name="clock", parameters_json_schema={
        "type": "object", "properties": {"zone": {"type": "string"}}})])]


@pytest.fixture
async def fake():
    server = await start_gemini_fake(vertex_public_key=PUBLIC)
    yield server
    await server.close()


def _client(fake, version: str = "v1beta") -> genai.Client:
    return genai.Client(api_key="AIza-test", http_options=types.HttpOptions(base_url=fake.base_url,
                                                                           api_version=version))


def _both_parse(answer: dict) -> None:
    json_format.ParseDict(answer, gl.GenerateContentResponse.pb()(), ignore_unknown_fields=False)
    types.GenerateContentResponse.model_validate(answer)


def test_every_answer_shape_parses_with_the_protos_and_google_genai():
    body = {"contents": [{"role": "user", "parts": [{"text": "call_tools [fake:cached]"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}}
    for text in ("call_tools", "hello"):
        body["contents"][0]["parts"][0]["text"] = text
        parts, finish = gemini_fake.answer(body)
        use = gemini_fake.usage(body, parts, cached=True)
        _both_parse(gemini_fake.response(parts, finish, use, "gemini-2.5-flash", "r1"))
        for frame in gemini_fake.stream_frames(parts, finish, use, "gemini-2.5-flash", "r1"):
            _both_parse(frame)
    with pytest.raises(Exception):  # google-genai's types forbid unknown fields, so this check bites
        types.GenerateContentResponse.model_validate({"candidates": [], "usage_typo": {}})


async def test_the_sdk_round_trips_parallel_calls_with_their_thought_signature(fake):
    client = _client(fake).aio
    config = types.GenerateContentConfig(tools=TOOLS, system_instruction="be brief")
    first = await client.models.generate_content(model="gemini-2.5-flash", contents="call_tools please",
                                                 config=config)
    parts = first.candidates[0].content.parts
    assert [p.function_call.name for p in parts] == ["weather", "clock"]
    assert parts[0].thought_signature and parts[1].thought_signature is None
    assert first.candidates[0].finish_reason == types.FinishReason.STOP  # as Gemini: STOP, not a tool reason
    history = [types.Content(role="user", parts=[types.Part(text="call_tools please")]),
               first.candidates[0].content,
               types.Content(role="user", parts=[
                   types.Part.from_function_response(name="weather", response={"result": "sunny"}),
                   types.Part.from_function_response(name="clock", response={"result": "noon"})])]
    final = await client.models.generate_content(model="gemini-2.5-flash", contents=history, config=config)
    assert final.text == "Echo: sunny | noon"
    seen = fake.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == "AIza-test"
    # the same history without the signature is refused, as Gemini 3 refuses it
    history[1].parts[0].thought_signature = None
    with pytest.raises(errors.ClientError) as info:
        await client.models.generate_content(model="gemini-2.5-flash", contents=history, config=config)
    assert info.value.code == 400 and "thought_signature" in info.value.message


async def test_the_sdk_streams_with_usage_on_the_last_frame(fake):
    chunks = [c async for c in await _client(fake, "v1").aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="one two three")]
    assert "".join(c.text or "" for c in chunks) == "Echo: one two three"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 4 and chunks[-1].usage_metadata.prompt_token_count == 3
    assert fake.requests[-1].path == "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


async def test_the_sdk_sees_the_fakes_errors_and_blocks(fake):
    client = _client(fake).aio
    with pytest.raises(errors.ClientError) as info:
        await client.models.generate_content(model="gemini-2.5-flash", contents="x [fake:error-429]")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    retry = [d for d in info.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    with pytest.raises(errors.ServerError) as info:
        await client.models.generate_content(model="gemini-2.5-flash+error-503", contents="x")
    assert info.value.status == "UNAVAILABLE"
    blocked = await client.models.generate_content(model="gemini-2.5-flash", contents="x [fake:blocked]")
    assert blocked.candidates is None and blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    with pytest.raises(errors.ClientError) as info:  # the protos refuse what they do not know
        await client.models.generate_content(model="gemini-2.5-flash", contents="x",
                                             config=types.GenerateContentConfig(http_options=types.HttpOptions(
                                                 extra_body={"generationConfig": {"max_tokens": 5}})))
    assert info.value.code == 400 and "max_tokens" in info.value.message
    fake.api_keys = frozenset({"AIza-test"})
    with pytest.raises(errors.ClientError) as info:  # Gemini answers a bad key with 400 API_KEY_INVALID
        await genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=fake.base_url)).aio.models \
            .generate_content(model="gemini-2.5-flash", contents="x")
    assert info.value.code == 400 and info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_vertex_mode_gets_a_token_by_the_service_account_grant(fake):
    info = {"type": "service_account", "project_id": "p1", "private_key_id": "k1", "client_id": "1",
            "private_key": KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "client_email": "svc@p1.iam.gserviceaccount.com", "token_uri": fake.base_url + "/token"}
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    # google-auth's grant blocks: off this loop, which serves the fake
    await asyncio.to_thread(creds.refresh, google_requests.Request())
    assert creds.token.startswith("ya29.fake-") and fake.tokens_issued == 1
    client = genai.Client(vertexai=True, project="p1", location="us-central1", credentials=creds,
                          http_options=types.HttpOptions(base_url=fake.base_url))
    reply = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi vertex")
    assert reply.text == "Echo: hi vertex"
    seen = fake.requests[-1]
    assert seen.path == ("/v1beta1/projects/p1/locations/us-central1/publishers/google/models/"
                         "gemini-2.5-flash:generateContent")
    assert seen.headers["Authorization"] == f"Bearer {creds.token}"
    with pytest.raises(errors.ClientError) as refused:  # a token it never issued
        creds.token = "ya29.forged"
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert refused.value.code == 401
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = service_account.Credentials.from_service_account_info({**info, "private_key": other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()},
        scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with pytest.raises(google_exceptions.RefreshError):  # signed by another key: no token
        await asyncio.to_thread(forged.refresh, google_requests.Request())


async def test_google_genai_embeds_through_the_fake_in_both_modes(fake):
    """google-genai's embed_content sends batchEmbedContents (Gemini API) and predict (Vertex AI):
    both pass the fake's checks, and its answers parse with the protos and google-genai."""
    gemini = await _client(fake).aio.models.embed_content(
        model="gemini-embedding-001", contents=["one two", "three"],
        config=types.EmbedContentConfig(output_dimensionality=64))
    assert [len(e.values) for e in gemini.embeddings] == [64, 64]
    assert fake.requests[-1].path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert gemini.embeddings[1].values == pytest.approx(gemini_fake.embeddings.vector("three", 64))
    one = gemini_fake.embeddings.gemini_answer("text-embedding-004", "embedContent", "v1beta",
                                               {"content": {"parts": [{"text": "hi"}]}})
    # google-genai always batches on the Gemini API: embedContent's answer is checked by the proto
    json_format.ParseDict(one, gl.EmbedContentResponse.pb()(), ignore_unknown_fields=False)
    with pytest.raises(errors.ClientError) as info:  # longer than the model's full size
        await _client(fake).aio.models.embed_content(model="text-embedding-004", contents="x",
                                                     config=types.EmbedContentConfig(output_dimensionality=4096))
    assert info.value.code == 400
    fake.google_tokens.users["cid"] = ("secret", "1//refresh")
    from google.oauth2 import credentials as user_credentials

    creds = user_credentials.Credentials(token=None, refresh_token="1//refresh", client_id="cid",
                                         client_secret="secret", token_uri=fake.base_url + "/token")
    await asyncio.to_thread(creds.refresh, google_requests.Request())  # the authorized-user grant
    vertex = genai.Client(vertexai=True, project="p1", location="us-central1", credentials=creds,
                          http_options=types.HttpOptions(base_url=fake.base_url))
    reply = await vertex.aio.models.embed_content(model="text-embedding-005", contents=["a b c"])
    assert len(reply.embeddings[0].values) == 768 and reply.embeddings[0].statistics.token_count == 3
    assert fake.requests[-1].path.endswith("/publishers/google/models/text-embedding-005:predict")
    with pytest.raises(errors.ClientError):  # Vertex's gemini-embedding takes one text per call
        await vertex.aio.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
