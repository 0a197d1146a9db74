"""The fake Bedrock checked by botocore itself: what botocore's bedrock-runtime client sends (SigV4
or a Bedrock API key) passes the fake's checks, and what the fake answers (whole, event streams,
errors, exceptions inside a stream) botocore's own parsers read as Bedrock's."""

from __future__ import annotations

import asyncio
import base64

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from tests.fakes.bedrock_fake import ACCESS_KEY, REGION, SECRET_KEY, start_bedrock_fake

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
TOOLS = {"tools": [
    {"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}},
    {"toolSpec": {"name": "time", "inputSchema": {"json": {"type": "object", "properties": {
        "zone": {"type": "string"}}}}}}]}


@pytest.fixture
async def fake():
    server = await start_bedrock_fake()
    yield server
    await server.close()


def _client(fake, secret: str = SECRET_KEY):
    return botocore.session.get_session().create_client(
        "bedrock-runtime", region_name=REGION, endpoint_url=fake.base_url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


async def test_botocore_parses_a_whole_answer_signed_with_sigv4(fake):
    png = b"\x89PNG\r\n\x1a\n fake"
    answer = await asyncio.to_thread(_client(fake).converse, modelId=MODEL, system=[{"text": "Be terse."}],
                                     messages=[{"role": "user", "content": [
                                         {"text": "hello fake"},
                                         {"image": {"format": "png", "source": {"bytes": png}}}]}],
                                     inferenceConfig={"maxTokens": 50})
    assert answer["output"]["message"]["content"] == [{"text": "Echo: hello fake [1 image(s)]"}]
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"] == {"inputTokens": 4, "outputTokens": 5, "totalTokens": 9,
                               "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    assert fake.requests[-1].path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    assert base64.b64decode(fake.requests[-1].json["messages"][0]["content"][1]["image"]["source"]["bytes"]) == png


async def test_botocore_decodes_the_event_stream_with_parallel_tool_calls(fake):
    response = await asyncio.to_thread(_client(fake).converse_stream, modelId=MODEL,
                                       messages=_user("call_tools now"), toolConfig=TOOLS)
    events = await asyncio.to_thread(lambda: list(response["stream"]))
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert [s["name"] for s in starts] == ["weather", "time"] and starts[0]["toolUseId"] != starts[1]["toolUseId"]
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 2


async def test_botocore_sees_the_fakes_errors_and_in_stream_exceptions(fake):
    client = _client(fake)
    for marker, code, status in (("error-429", "ThrottlingException", 429),
                                 ("not-ready", "ModelNotReadyException", 429),
                                 ("error-503", "ServiceUnavailableException", 503),
                                 ("error-500", "InternalServerException", 500)):
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(client.converse, modelId=MODEL, messages=_user(f"x [fake:{marker}]"))
        error = info.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
        assert error["Error"]["Message"]
    response = await asyncio.to_thread(client.converse_stream, modelId=MODEL,
                                       messages=_user("a b c [fake:exception-event]"))
    with pytest.raises(EventStreamError) as stream_error:
        await asyncio.to_thread(lambda: list(response["stream"]))
    assert stream_error.value.response["Error"]["Code"] == "throttlingException"


async def test_bad_signatures_and_bedrocks_own_rules_are_refused(fake):
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(_client(fake, secret="wrong").converse, modelId=MODEL, messages=_user("x"))
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    client = _client(fake)
    for messages, extra in (
            ([{"role": "assistant", "content": [{"text": "x"}]}], {}),
            (_user("  "), {}),
            ([*_user("x"), {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {}}}]},
              {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}}]}], {}),
            (_user("x"), {"additionalModelRequestFields": {"thinking": 1}, "toolConfig": {
                "tools": TOOLS["tools"], "toolChoice": {"tool": {"name": "nope"}}}})):
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(client.converse, modelId=MODEL, messages=messages, **extra)
        assert info.value.response["Error"]["Code"] == "ValidationException", messages


async def test_a_bedrock_api_key_is_accepted_as_bearer(fake):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        body = {"messages": _user("hello bearer")}
        url = f"{fake.base_url}/model/{MODEL.replace(':', '%3A')}/converse"
        async with http.post(url, json=body, headers={"Authorization": "Bearer bedrock-api-key-fake-0001"}) as r:
            answer = await r.json()
            assert r.status == 200 and answer["output"]["message"]["content"][0]["text"] == "Echo: hello bearer"
        async with http.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 403 and r.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


async def test_botocore_invokes_the_embedding_models(fake):
    import json

    client = _client(fake)
    titan = await asyncio.to_thread(client.invoke_model, modelId="amazon.titan-embed-text-v2:0",
                                    body=json.dumps({"inputText": "two words", "dimensions": 256}),
                                    contentType="application/json", accept="application/json")
    answer = json.loads(titan["body"].read())
    assert len(answer["embedding"]) == 256 and answer["inputTextTokenCount"] == 2
    cohere = await asyncio.to_thread(client.invoke_model, modelId="cohere.embed-english-v3",
                                     body=json.dumps({"texts": ["a", "b"], "input_type": "search_query"}))
    assert len(json.loads(cohere["body"].read())["embeddings"]) == 2
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(client.invoke_model, modelId="amazon.titan-embed-text-v2:0",
                                body=json.dumps({"inputText": "x", "unknown": 1}))
    assert info.value.response["Error"]["Code"] == "ValidationException"
