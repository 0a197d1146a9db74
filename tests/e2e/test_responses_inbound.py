"""OpenAI's Responses API inbound (stateless): the official `openai` SDK's responses.create and
responses.stream(), through the real edge, against every provider's fake, translated through Chat
Completions. The fakes answer as test_provider_scenarios describes."""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.test_provider_scenarios import PNG, PROVIDERS, Provider

pytestmark = pytest.mark.timeout(120)
WEATHER = {"type": "function", "name": "weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False}}
CLOCK = {"type": "function", "name": "clock", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}


@pytest.fixture(params=PROVIDERS, ids=lambda p: p.name)
def provider(request) -> Provider:
    return request.param


def _client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)


def _words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def test_plain_response(stack, provider):
    text = f"hello from {provider.name}"
    reply = _client(stack).responses.create(model=provider.model, instructions="Be terse.", input=text)
    assert reply.object == "response" and reply.id.startswith("resp_") and reply.status == "completed"
    assert reply.output_text == f"Echo: {text}"
    assert [item.type for item in reply.output] == ["message"]
    usage = reply.usage
    assert (usage.input_tokens, usage.output_tokens) == (_words("Be terse.", text), _words("Echo:", text))
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_stream_events_in_order_and_the_sdk_helper(stack, provider):
    text = f"stream this from {provider.name} please"
    with _client(stack).responses.stream(model=provider.model, input=[
            {"role": "user", "content": [{"type": "input_text", "text": text}]}]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.index("response.output_item.added") < kinds.index("response.content_part.added") \
        < kinds.index("response.output_text.delta")
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == f"Echo: {text}"
    assert final.output_text == f"Echo: {text}" and final.status == "completed"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (_words(text), _words("Echo:", text))
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_function_call_round_trip(stack, provider):
    client = _client(stack)
    reply = client.responses.create(model=provider.model, input="call_tools for Paris", tools=[WEATHER, CLOCK])
    calls = [item for item in reply.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["weather", "clock"]
    assert json.loads(calls[0].arguments) == {"city": "fake"} and len({c.call_id for c in calls}) == 2

    with client.responses.stream(model=provider.model, input="call_tools for Paris",
                                 tools=[WEATHER, CLOCK]) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds.count("response.function_call_arguments.done") == 2
    assert [(i.name, json.loads(i.arguments)) for i in streamed.output if i.type == "function_call"] == [
        ("weather", {"city": "fake"}), ("clock", {"zone": "fake"})]

    follow_up = [{"role": "user", "content": "call_tools for Paris"},
                 *[c.model_dump(exclude_none=True) for c in calls],
                 {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
                 {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"}]
    final = client.responses.create(model=provider.model, input=follow_up, tools=[WEATHER, CLOCK])
    assert final.output_text == "Echo: sunny | noon"


def test_image_input(stack, provider):
    content = [{"type": "input_text", "text": "what is this"},
               {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]
    by_url = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}
    if not provider.image_urls:  # Bedrock takes only an image's bytes: a 400 saying so
        with pytest.raises(openai.BadRequestError) as info:
            _client(stack).responses.create(model=provider.model, input=[
                {"role": "user", "content": [*content, by_url]}])
        assert "not URLs" in info.value.response.json()["error"]["message"]
        reply = _client(stack).responses.create(model=provider.model, input=[
            {"role": "user", "content": content}])
        assert reply.output_text == "Echo: what is this [1 image(s)]"
        return
    reply = _client(stack).responses.create(model=provider.model, input=[
        {"role": "user", "content": [*content, by_url]}])
    assert reply.output_text == "Echo: what is this [2 image(s)]"


def test_cut_by_max_output_tokens_is_incomplete(stack, provider):
    client = _client(stack)
    reply = client.responses.create(model=provider.model, max_output_tokens=16,
                                    input=" ".join(f"w{i}" for i in range(30)))
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
    with client.responses.stream(model=provider.model, max_output_tokens=16,
                                 input=" ".join(f"w{i}" for i in range(30))) as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.incomplete"


def test_errors_in_openais_shape(stack, provider):
    client = _client(stack)
    for asked, seen in provider.errors:
        with pytest.raises(openai.APIStatusError) as info:
            client.responses.create(model=provider.model, input=f"fail [fake:error-{asked}]")
        assert info.value.status_code == seen
        assert set(info.value.response.json()["error"]) >= {"message", "type", "param", "code"}
        if asked == 429:
            assert bool(info.value.response.headers.get("retry-after")) == provider.retry_after


def test_what_it_does_not_serve_is_refused_by_name(stack):
    client = _client(stack)
    for kwargs, param in [({"previous_response_id": "resp_123"}, "previous_response_id"),
                          ({"conversation": "conv_1"}, "conversation"),
                          ({"tools": [{"type": "web_search"}]}, "tools[0]"),
                          ({"extra_body": {"no_such_field": 1}}, "no_such_field")]:
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4o-mini", input="x", **kwargs)
        assert info.value.response.json()["error"]["param"] == param


def test_a_stream_broken_midway_raises(stack, provider):
    with pytest.raises(openai.APIError):
        with _client(stack).responses.stream(
                model=provider.model, input=f"one two three four five [fake:{provider.midway}]") as stream:
            stream.get_final_response()
