"""The fake Anthropic API checked by Anthropic's own SDK: what the SDK sends passes the fake's
validation, and what the fake answers (whole, streamed, errors) the SDK parses as Anthropic's."""

from __future__ import annotations

import anthropic
import orjson
import pytest

from tests.fakes.anthropic_fake import start_anthropic_fake

TOOLS = [{"name": "weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
         {"name": "time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}]


@pytest.fixture
async def fake():
    server = await start_anthropic_fake()
    yield server
    await server.close()


def _client(fake, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0, **kw)


async def test_the_sdk_parses_a_whole_answer_with_cached_usage(fake):
    message = await _client(fake).messages.create(
        model="claude-sonnet-4-5", max_tokens=100,
        system=[{"type": "text", "text": "Long shared prompt here", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello fake"}])
    assert message.content[0].text == "Echo: hello fake"
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert usage.cache_read_input_tokens + usage.input_tokens == 6 and usage.cache_read_input_tokens == 3
    seen = fake.requests[-1]
    assert seen.headers["anthropic-version"] in ("2023-06-01", "2026-10-21")


async def test_the_sdk_streams_parallel_tool_calls(fake):
    async with _client(fake).messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS,
            messages=[{"role": "user", "content": "call_tools now"}]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and "message_stop" in kinds
    assert [(b.type, b.name) for b in final.content] == [("tool_use", "weather"), ("tool_use", "time")]
    assert final.content[0].input == {"city": "fake"} and final.stop_reason == "tool_use"
    assert final.content[0].id != final.content[1].id


async def test_the_sdk_sees_the_fakes_errors(fake):
    client = _client(fake)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(model="claude-sonnet-4-5+error-429", max_tokens=5,
                                     messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.OverloadedError):
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=5,
                                     messages=[{"role": "user", "content": "x [fake:error-529]"}])
    with pytest.raises(anthropic.APIStatusError) as after_200:
        async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[
                {"role": "user", "content": "one two three [fake:error-event]"}]) as stream:
            async for _ in stream:
                pass
    assert "Overloaded" in str(after_200.value)
    with pytest.raises(anthropic.BadRequestError):  # the validator refuses what the types refuse
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=5,
                                     messages=[{"role": "user", "content": "x"}],
                                     extra_body={"temperature_typo": 1})


async def test_count_tokens_takes_what_the_sdk_sends_and_refuses_what_its_types_do_not(fake):
    client = _client(fake)
    counted = await client.messages.count_tokens(
        model="claude-sonnet-4-5", tools=TOOLS[:1], thinking={"type": "enabled", "budget_tokens": 1024},
        system=[{"type": "text", "text": "Be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "count these words"}])
    assert counted.input_tokens == 5 + -(-len(orjson.dumps(TOOLS[0])) // 8)
    assert fake.requests[-1].path == "/v1/messages/count_tokens"
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.count_tokens(model="m", extra_body={"max_tokens": 5},
                                           messages=[{"role": "user", "content": "x"}])
    assert "max_tokens" in info.value.message


async def test_thinking_comes_signed_and_only_its_own_signature_goes_back(fake):
    client = _client(fake)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = await client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=thinking,
                                         messages=[{"role": "user", "content": "think"}])
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    turn = [{"role": "user", "content": "think"}, {"role": "assistant", "content": blocks},
            {"role": "user", "content": "more"}]
    again = await client.messages.create(model="claude-sonnet-4-5", max_tokens=2048,
                                         thinking=thinking, messages=turn)
    assert again.content[0].type == "thinking"
    blocks[0]["signature"] = "Zm9yZ2Vk"
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=thinking,
                                     messages=turn)
    assert "signature" in info.value.message
