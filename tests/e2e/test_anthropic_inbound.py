"""Anthropic's Messages API inbound: the official `anthropic` SDK, through the real edge, against
every provider's fake (an OpenAI-format one, Anthropic's own, Azure's), translated through Chat
Completions (passed through as it is to Anthropic's: what only that carries is in
test_anthropic_native.py). The fakes answer as test_provider_scenarios describes ("Echo: <last user text>", tool
calls on "call_tools", words as tokens), so the counts each reports are known here."""

from __future__ import annotations

import asyncio
import base64
import json

import anthropic
import httpx
import pytest

from tests.e2e.test_provider_scenarios import PROVIDERS, Provider

pytestmark = pytest.mark.timeout(120)
WEATHER = {"name": "weather", "description": "Weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CLOCK = {"name": "clock", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()


@pytest.fixture(params=PROVIDERS, ids=lambda p: p.name)
def provider(request) -> Provider:
    return request.param


def _client(stack, **kw) -> anthropic.Anthropic:
    """SDK 2.x style: Authorization: Bearer, its own (newer) anthropic-version."""
    return anthropic.Anthropic(base_url=stack.edge_url, api_key=stack.master_key, max_retries=0, **kw)


def _client_1x(stack) -> anthropic.Anthropic:
    """SDK 1.x style: x-api-key and anthropic-version 2023-06-01."""
    return anthropic.Anthropic(base_url=stack.edge_url, api_key=None, auth_token=None, max_retries=0,
                               default_headers={"x-api-key": stack.master_key,
                                                "anthropic-version": "2023-06-01"})


def _words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def test_plain_message_in_both_auth_styles(stack, provider):
    for client in (_client(stack), _client_1x(stack)):
        text = f"hello from {provider.name}"
        reply = client.messages.create(model=provider.model, max_tokens=100, system="Be terse.",
                                       messages=[{"role": "user", "content": text}])
        assert reply.type == "message" and reply.role == "assistant" and reply.id.startswith("msg_")
        assert [b.type for b in reply.content] == ["text"]
        assert reply.content[0].text == f"Echo: {text}"
        assert reply.stop_reason == "end_turn" and reply.model == provider.model
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (
            _words("Be terse.", text), _words("Echo:", text))


def test_stream_helper_events_and_exact_usage(stack, provider):
    text = f"stream this from {provider.name} please"
    with _client(stack).messages.stream(model=provider.model, max_tokens=100,
                                        messages=[{"role": "user", "content": text}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    start = events[0].message.usage
    assert start.input_tokens > 0  # a local estimate, never 0 (Claude Code shows it)
    assert "content_block_start" in kinds and kinds.index("content_block_start") < kinds.index("text")
    assert final.content[0].text == f"Echo: {text}" and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (_words(text), _words("Echo:", text))


def test_async_create_and_stream(stack):
    async def main():
        client = anthropic.AsyncAnthropic(base_url=stack.edge_url, api_key=stack.master_key, max_retries=0)
        try:
            replies = await asyncio.gather(*(client.messages.create(
                model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": f"question {i}"}])
                for i in range(4)))
            async with client.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=50,
                                              messages=[{"role": "user", "content": "async words"}]) as s:
                streamed = await s.get_final_text()
            return [r.content[0].text for r in replies], streamed
        finally:
            await client.close()

    texts, streamed = asyncio.run(main())
    assert texts == [f"Echo: question {i}" for i in range(4)] and streamed == "Echo: async words"


def test_tool_use_round_trip(stack, provider):
    client = _client(stack)
    messages = [{"role": "user", "content": "call_tools for Paris"}]
    reply = client.messages.create(model=provider.model, max_tokens=200, messages=messages,
                                   tools=[WEATHER, CLOCK])
    assert reply.stop_reason == "tool_use"
    uses = [b for b in reply.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["weather", "clock"]
    assert uses[0].input == {"city": "fake"} and len({u.id for u in uses}) == 2

    with client.messages.stream(model=provider.model, max_tokens=200, messages=messages,
                                tools=[WEATHER, CLOCK]) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in streamed.content if b.type == "tool_use"] == [
        ("weather", {"city": "fake"}), ("clock", {"zone": "fake"})]

    # The SDK's own blocks as they come back (unset fields as null), as users append them.
    follow_up = [*messages, {"role": "assistant", "content": [u.model_dump() for u in uses]},
                 {"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
                     {"type": "tool_result", "tool_use_id": uses[1].id,
                      "content": [{"type": "text", "text": "noon"}]}]}]
    final = client.messages.create(model=provider.model, max_tokens=200, messages=follow_up,
                                   tools=[WEATHER, CLOCK])
    assert final.content[0].text == "Echo: sunny | noon" and final.stop_reason == "end_turn"


def test_images_base64_and_url(stack, provider):
    content = [{"type": "text", "text": "what is this"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]
    by_url = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    if not provider.image_urls:  # Bedrock takes only an image's bytes: its 400 in Anthropic's shape
        with pytest.raises(anthropic.BadRequestError) as info:
            _client(stack).messages.create(model=provider.model, max_tokens=50, messages=[
                {"role": "user", "content": [*content, by_url]}])
        assert "URL" in info.value.response.json()["error"]["message"]  # Bedrock's own refusal
        reply = _client(stack).messages.create(model=provider.model, max_tokens=50, messages=[
            {"role": "user", "content": content}])
        assert reply.content[0].text == "Echo: what is this [1 image(s)]"
        return
    reply = _client(stack).messages.create(model=provider.model, max_tokens=50, messages=[
        {"role": "user", "content": [*content, by_url]}])
    assert reply.content[0].text == "Echo: what is this [2 image(s)]"


def test_max_tokens_is_the_stop_reason_when_cut(stack, provider):
    client = _client(stack)
    content = "one two three four five six seven"
    reply = client.messages.create(model=provider.model, max_tokens=3,
                                   messages=[{"role": "user", "content": content}])
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 3
    with client.messages.stream(model=provider.model, max_tokens=3,
                                messages=[{"role": "user", "content": content}]) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"


def test_provider_errors_in_anthropics_shape(stack, provider):
    client = _client(stack)
    for asked, seen in provider.errors:
        if seen == 503 or asked == 529:
            seen = 529  # an overloaded provider: Anthropic's 529 on its route (503 on OpenAI's)
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(model=provider.model, max_tokens=10, messages=[
                {"role": "user", "content": f"fail [fake:error-{asked}]"}])
        error = info.value
        assert error.status_code == seen, (asked, error.response.text)
        body = error.response.json()
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
        if seen == 529:
            assert isinstance(error, anthropic.OverloadedError)
            assert body["error"]["type"] == "overloaded_error"
        if asked == 429:
            assert isinstance(error, anthropic.RateLimitError)
            assert bool(error.response.headers.get("retry-after")) == provider.retry_after
            assert body["error"]["type"] == "rate_limit_error"


def test_gateway_errors_in_anthropics_shape(stack):
    bad_key = anthropic.Anthropic(base_url=stack.edge_url, api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad_key.messages.create(model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["type"] == "authentication_error"
    client = _client(stack)
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="gpt-4o-mini", max_tokens=5, extra_body={"top_k": 3},
                               messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["type"] == "invalid_request_error"
    assert "top_k" in info.value.response.json()["error"]["message"]
    raw = httpx.post(f"{stack.edge_url}/v1/messages", content=b"{not json",
                     headers={"x-api-key": stack.master_key, "content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["type"] == "error"
    raw = httpx.post(f"{stack.edge_url}/v1/messages/batches", json={},
                     headers={"x-api-key": stack.master_key})
    assert raw.status_code == 404 and raw.json()["error"]["type"] == "not_found_error"


def test_a_stream_broken_midway_raises(stack, provider):
    with pytest.raises(anthropic.APIError):
        with _client(stack).messages.stream(
                model=provider.model, max_tokens=100,
                messages=[{"role": "user", "content": f"one two three four five [fake:{provider.midway}]"}]
        ) as stream:
            stream.get_final_message()


def test_count_tokens_is_a_marked_estimate(stack):
    client = _client(stack)
    raw = client.messages.with_raw_response.count_tokens(  # Anthropic's own: test_anthropic_native
        model="gpt-4o-mini", system="You are terse.", tools=[WEATHER],
        messages=[{"role": "user", "content": "how many tokens is this"}])
    assert raw.headers["x-switchboard-token-count"] == "estimate"
    assert raw.parse().input_tokens > _words("You are terse.", "how many tokens is this")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])


# A Claude-Code-shaped turn: beta route and headers, system blocks with cache_control, tools with
# cache_control, an earlier tool_use answered by a tool_result (one an error), streamed.
CLAUDE_CODE_TURN = {
    "model": "gpt-4o-mini", "max_tokens": 32000, "stream": True,
    "metadata": {"user_id": "user_abc_account_def_session_123"},
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with software "
                                 "engineering tasks.", "cache_control": {"type": "ephemeral"}}],
    "tools": [
        {"name": "Bash", "description": "Executes a given bash command",
         "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                          "required": ["command"], "additionalProperties": False,
                          "$schema": "http://json-schema.org/draft-07/schema#"}},
        {"name": "Read", "description": "Reads a file", "cache_control": {"type": "ephemeral"},
         "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                          "required": ["file_path"]}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": "list the files", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll list them."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"file_path": "/x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.py b.py"},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": True,
             "content": [{"type": "text", "text": "no such file"}]},
            {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}}]}],
}


def test_claude_code_shaped_session_replayed(stack):
    client = _client(stack, default_headers={
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-app": "cli", "user-agent": "claude-cli/2.0.0 (external, cli)"})
    body = {k: v for k, v in CLAUDE_CODE_TURN.items() if k != "stream"}
    with client.beta.messages.stream(**body) as stream:  # POST /v1/messages?beta=true
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].type == "text" and final.content[0].text == "Echo: thanks"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 2
    # What the provider was sent: every turn, the tool results first in the last one.
    echo = client.messages.create(**{**body, "max_tokens": 4096, "messages": [
        *body["messages"][:-1], {"role": "user", "content": [
            *body["messages"][-1]["content"][:2], {"type": "text", "text": "thanks [fake:echo-all]"}]}]})
    text = echo.content[0].text
    assert "tool: a.py b.py" in text and "tool: Error: no such file" in text
    assert text.index("tool: a.py") < text.index("user: thanks")
    json.dumps(final.model_dump())  # the SDK's accumulated message is whole and serializable
