"""One scenario suite over every provider, through the edge, with the official openai SDK.

Each provider is a fake of its own wire format (OpenAI, Anthropic Messages, Azure OpenAI, Gemini, Bedrock
Converse) in its own process, validating every request the gateway translated against the provider's own types;
the gateway must make them all look like OpenAI. A provider joins by adding a row to PROVIDERS
(Gemini and Vertex AI share one fake; Bedrock has its own).

The fakes answer alike: "Echo: <last user text>", a count of images, tool calls on "call_tool(s)",
"Echo: r1 | r2" after tool results, a schema-shaped object for json_schema; they count tokens as
words, so the usage each reports is known here.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

import openai
import pytest


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    # The fakes' error statuses, as the gateway answers them: (status asked, status seen).
    errors: tuple[tuple[int, int], ...]
    midway: str  # the hook that breaks a stream after its first events
    id_prefix: str  # how the provider's answers are named: shows which fake answered
    image_urls: bool = True  # takes images by URL (Bedrock takes only their bytes: a 400 names it)
    retry_after: bool = True  # its 429 says when to retry (Bedrock's ThrottlingException does not)


COMMON_ERRORS = ((400, 400), (401, 502), (404, 404), (429, 429), (500, 502))
PROVIDERS = [
    Provider("openai", "gpt-4o-mini", (*COMMON_ERRORS, (503, 502)), "abort-mid-stream", "chatcmpl-"),
    Provider("anthropic", "anthropic/claude-sonnet-4-5", (*COMMON_ERRORS, (529, 503)), "error-event", "msg_"),
    Provider("azure", "azure/gpt-4o-mini", (*COMMON_ERRORS, (503, 502)), "abort-mid-stream", "chatcmpl-"),
    # Gemini's 503 UNAVAILABLE is its "model overloaded": a 503 the client may retry.
    Provider("gemini", "gemini/gemini-2.5-flash", (*COMMON_ERRORS, (503, 503)), "abort-mid-stream", "gfake"),
    Provider("vertex", "vertex/gemini-2.5-flash", (*COMMON_ERRORS, (503, 503)), "error-event", "gfake"),
    # Bedrock answers a bad signature with 403, never 401; ServiceUnavailable (503) may fail over.
    Provider("bedrock", "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
             ((400, 400), (403, 502), (404, 404), (408, 504), (424, 502), (429, 429), (500, 502), (503, 503)),
             "abort-mid-stream", "chatcmpl-", image_urls=False, retry_after=False),
]
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "clock", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=PROVIDERS, ids=lambda p: p.name)
def provider(request) -> Provider:
    return request.param


def _client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)


def _words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def test_models_list_names_each_enabled_provider(stack):
    ids = {m.id for m in _client(stack).models.list()}
    assert {"gpt-4o-mini", "anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"} <= ids
    assert {"gemini/gemini-2.5-flash", "vertex/gemini-2.5-pro"} <= ids
    # Azure's deployments are the customer's own: listed as AZURE_OPENAI_DEPLOYMENTS names them
    assert {i for i in ids if i.startswith("azure/")} == {"azure/gpt-4o-mini"}


def test_plain_chat(stack, provider):
    messages = [{"role": "system", "content": "Be terse."},
                {"role": "user", "content": f"hello from {provider.name}"}]
    reply = _client(stack).chat.completions.create(model=provider.model, messages=messages)
    choice = reply.choices[0]
    assert reply.id.startswith(provider.id_prefix)
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == f"Echo: hello from {provider.name}"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        _words("Be terse.", f"hello from {provider.name}"), _words(choice.message.content))
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streaming_with_usage(stack, provider):
    text = f"stream this reply from {provider.name} please"
    chunks = list(_client(stack).chat.completions.create(
        model=provider.model, messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True}))
    *body, last = chunks
    assert all(c.choices for c in body), "every chunk before the usage one has a choice"
    assert "".join(c.choices[0].delta.content or "" for c in body) == f"Echo: {text}"
    assert [c.choices[0].finish_reason for c in body if c.choices[0].finish_reason] == ["stop"]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (_words(text), _words("Echo:", text))
    assert len({c.id for c in chunks}) == 1


def test_streaming_without_usage_hides_it(stack, provider):
    chunks = list(_client(stack).chat.completions.create(
        model=provider.model, messages=[{"role": "user", "content": "no usage please"}], stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def _tool_calls_of(stream) -> tuple[dict[int, dict], list[str]]:
    calls: dict[int, dict] = {}
    finishes = []
    for chunk in stream:
        if not chunk.choices:
            continue
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
        for tc in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = tc.id or entry["id"]
            if tc.function:
                entry["name"] = tc.function.name or entry["name"]
                entry["arguments"] += tc.function.arguments or ""
    return calls, finishes


def test_tool_call_round_trip_with_parallel_calls(stack, provider):
    client = _client(stack)
    messages = [{"role": "user", "content": "call_tools for Paris"}]
    reply = client.chat.completions.create(model=provider.model, messages=messages, tools=[WEATHER, CLOCK])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["weather", "clock"]
    assert json.loads(calls[0].function.arguments) == {"city": "fake"}
    assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)

    streamed, finishes = _tool_calls_of(client.chat.completions.create(
        model=provider.model, messages=messages, tools=[WEATHER, CLOCK], stream=True))
    assert sorted(streamed) == [0, 1] and finishes == ["tool_calls"]
    assert [streamed[i]["name"] for i in (0, 1)] == ["weather", "clock"]
    assert json.loads(streamed[0]["arguments"]) == {"city": "fake"}
    assert json.loads(streamed[1]["arguments"]) == {"zone": "fake"}

    follow_up = [*messages, choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
                 {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"}]
    final = client.chat.completions.create(model=provider.model, messages=follow_up, tools=[WEATHER, CLOCK])
    assert final.choices[0].message.content == "Echo: sunny | noon"
    assert final.choices[0].finish_reason == "stop"


def test_image_input(stack, provider):
    by_url = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    if not provider.image_urls:
        with pytest.raises(openai.BadRequestError) as info:
            _client(stack).chat.completions.create(model=provider.model, messages=[
                {"role": "user", "content": [*content, by_url]}])
        assert info.value.response.json()["error"]["param"] == "messages[0].content[2].image_url.url"
        assert "not URLs" in info.value.response.json()["error"]["message"]
        reply = _client(stack).chat.completions.create(model=provider.model, messages=[
            {"role": "user", "content": content}])
        assert reply.choices[0].message.content == "Echo: what is this [1 image(s)]"
        return
    reply = _client(stack).chat.completions.create(model=provider.model, messages=[
        {"role": "user", "content": [*content, by_url]}])
    assert reply.choices[0].message.content == "Echo: what is this [2 image(s)]"


def test_json_schema_output(stack, provider):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
              "required": ["city", "celsius"], "additionalProperties": False}
    reply = _client(stack).chat.completions.create(
        model=provider.model, messages=[{"role": "user", "content": "weather as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})
    assert json.loads(reply.choices[0].message.content) == {"city": "fake", "celsius": 1.5}


def test_each_error_class(stack, provider):
    client = _client(stack)
    for asked, seen in provider.errors:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model=provider.model, messages=[
                {"role": "user", "content": f"fail [fake:error-{asked}]"}])
        error = info.value
        assert error.status_code == seen, (asked, error.response.text)
        body = error.response.json()["error"]
        assert set(body) >= {"message", "type", "param", "code"} and body["message"]
        if asked == 429:
            assert isinstance(error, openai.RateLimitError)
            assert bool(error.response.headers.get("retry-after")) == provider.retry_after
        if asked in (401, 403):
            assert "sk-" not in body["message"]


def test_a_stream_broken_midway_raises(stack, provider):
    # Whether the break reaches the gateway before its first byte to the client (then an HTTP
    # error, which could fail over) or after (an error event) depends on the reads; either way the
    # SDK raises. The codec tests pin down each case.
    with pytest.raises(openai.APIError):
        stream = _client(stack).chat.completions.create(
            model=provider.model, stream=True,
            messages=[{"role": "user", "content": f"one two three four five [fake:{provider.midway}]"}])
        for _ in stream:
            pass


def test_concurrent_streams_do_not_share_state(stack, provider):
    async def one(client: openai.AsyncOpenAI, i: int) -> tuple[int, str, dict]:
        tools = i % 2 == 0
        text = f"call_tools number {i}" if tools else f"plain number {i} words"
        stream = await client.chat.completions.create(
            model=provider.model, stream=True, messages=[{"role": "user", "content": text}],
            **({"tools": [WEATHER, CLOCK]} if tools else {}))
        content, calls, ids = "", {}, set()
        async for chunk in stream:
            ids.add(chunk.id)
            for tc in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
                calls.setdefault(tc.index, tc.id)
            content += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert len(ids) == 1
        return i, content, calls

    async def main() -> list[tuple[int, str, dict]]:
        client = openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
        try:
            return await asyncio.gather(*(one(client, i) for i in range(8)))
        finally:
            await client.close()

    results = asyncio.run(main())
    seen_ids: set[str] = set()
    for i, content, calls in results:
        if i % 2 == 0:
            assert content == "" and sorted(calls) == [0, 1]
            assert not seen_ids & set(calls.values())
            seen_ids |= set(calls.values())
        else:
            assert content == f"Echo: plain number {i} words" and calls == {}


def test_what_a_provider_cannot_do_is_refused(stack):
    client = _client(stack)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="anthropic/claude-sonnet-4-5", logprobs=True,
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["param"] == "logprobs"
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model="anthropic/claude-sonnet-4-5", input="x")
    assert info.value.status_code == 501
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini/gemini-2.5-flash", parallel_tool_calls=False, tools=[WEATHER],
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["param"] == "parallel_tool_calls"


def test_bedrock_model_ids_and_json_schema_through_a_forced_tool(stack):
    client = _client(stack)
    assert "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0" in {m.id for m in client.models.list()}
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    chunks = list(client.chat.completions.create(
        model="bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", stream=True,
        messages=[{"role": "user", "content": "weather as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}}))
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == {"city": "fake"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="bedrock/amazon.nova-lite-v1:0", tools=[WEATHER], tool_choice="none",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["param"] == "tool_choice"


def test_bedrock_embeddings_on_titan_and_cohere(stack):
    client = _client(stack)
    titan = client.embeddings.create(model="bedrock/amazon.titan-embed-text-v2:0", input="three words here",
                                     dimensions=256)  # the SDK asks for base64 and decodes it
    assert len(titan.data) == 1 and len(titan.data[0].embedding) == 256
    assert titan.usage.prompt_tokens == 3
    cohere = client.embeddings.create(model="bedrock/cohere.embed-english-v3", input=["one", "two"],
                                      encoding_format="float")
    assert [d.index for d in cohere.data] == [0, 1] and len(cohere.data[0].embedding) == 1024
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="bedrock/amazon.titan-embed-text-v2:0", input=["a", "b"])
    assert info.value.response.json()["error"]["param"] == "input"


def test_gemini_and_vertex_embeddings(stack):
    client = _client(stack)
    one = client.embeddings.create(model="gemini/gemini-embedding-001", input="three words here",
                                   dimensions=256)  # embedContent; the SDK asks for base64 and decodes it
    assert len(one.data) == 1 and len(one.data[0].embedding) == 256
    assert one.usage.prompt_tokens == 3  # Gemini counts none: the gateway's count of the input
    many = client.embeddings.create(model="gemini/text-embedding-004", input=["one", "two"],
                                    encoding_format="float")  # batchEmbedContents
    assert [d.index for d in many.data] == [0, 1] and len(many.data[1].embedding) == 768
    assert many.data[0].embedding != many.data[1].embedding
    vertex = client.embeddings.create(model="vertex/text-embedding-005", input=["a b", "c d e"], dimensions=64)
    assert [len(d.embedding) for d in vertex.data] == [64, 64]
    assert vertex.usage.prompt_tokens == 5  # Vertex's own token counts, summed
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="vertex/gemini-embedding-001", input=["a", "b"])
    assert info.value.response.json()["error"]["param"] == "input"
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="gemini/gemini-embedding-001+error-429", input="x")


def test_bedrock_documents_reasoning_and_its_own_token_count(stack):
    import anthropic

    client = _client(stack)
    model = "bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0"
    pdf = base64.b64encode(b"%PDF-1.4 a fake pdf").decode()
    reply = client.chat.completions.create(model=model, reasoning_effort="low", messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "summarise"},
            {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": "report.pdf"}}]}])
    message = reply.choices[0].message
    assert message.content == "Echo: summarise [1 document(s)]"
    assert message.model_extra["reasoning_content"] == "Thinking about it."
    chunks = list(client.chat.completions.create(model=model, reasoning_effort="low", stream=True,
                                                 messages=[{"role": "user", "content": "think"}]))
    thought = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                      for c in chunks if c.choices)
    assert thought == "Thinking about it."
    counter = anthropic.Anthropic(base_url=stack.edge_url, api_key=stack.master_key, max_retries=0)
    raw = counter.messages.with_raw_response.count_tokens(
        model=model, system="Be terse.", messages=[{"role": "user", "content": "count these four words"}])
    assert raw.headers["x-switchboard-token-count"] == "provider"  # Bedrock's CountTokens
    assert raw.parse().input_tokens == _words("Be terse.", "count these four words")


def test_azure_content_filter_is_a_finish_reason(stack):
    client = _client(stack)
    reply = client.chat.completions.create(model="azure/gpt-4o-mini", messages=[
        {"role": "user", "content": "trigger_filter please"}])
    assert reply.choices[0].finish_reason == "content_filter"
    chunks = list(client.chat.completions.create(model="azure/gpt-4o-mini", stream=True, messages=[
        {"role": "user", "content": "trigger_filter please"}]))
    assert all(c.choices for c in chunks)  # Azure's prompt-filter chunk is not passed on
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize("model", ["gemini/gemini-2.5-flash", "vertex/gemini-2.5-flash"])
def test_gemini_safety_blocks_are_content_filter_and_cached_tokens_count_once(stack, model):
    client = _client(stack)
    for marker in ("blocked", "safety"):
        reply = client.chat.completions.create(model=model, messages=[
            {"role": "user", "content": f"something [fake:{marker}]"}])
        assert reply.choices[0].finish_reason == "content_filter", marker
        chunks = list(client.chat.completions.create(model=model, stream=True, messages=[
            {"role": "user", "content": f"something [fake:{marker}]"}]))
        assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["content_filter"]
    text = "a long shared prompt of ten words [fake:cached]"
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    # Gemini's promptTokenCount includes the cached part: the prompt is counted once
    assert reply.usage.prompt_tokens == _words(text)
    assert reply.usage.prompt_tokens_details.cached_tokens == _words(text) // 2
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x [fake:malformed-call]"}])
    assert info.value.status_code == 502
