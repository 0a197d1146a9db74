"""/v1/messages passed through to Anthropic: the official `anthropic` SDK, through the real edge,
against the Anthropic fake, which checks every body against the SDK's own types. What only the
native path carries reaches it (cache_control, signed thinking), its answer comes back as it
sent it (usage with cache tokens, billed once at the catalog's cache rates), count_tokens is its
own count (Claude on Vertex's too, whose chat completions are translated to Anthropic's format),
its overloaded 529 stays a 529, and output guardrails still read its text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import anthropic
import openai
import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.e2e.test_guardrails_requests import CARD, EMAIL, guarded_key
from tests.e2e.test_usage_billing import create_key, wait_for_records

pytestmark = pytest.mark.timeout(120)
MODEL = "anthropic/claude-sonnet-4-5"
BEDROCK = "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0"  # InvokeModel, natively too
VERTEX = "vertex/claude-sonnet-4-5@20250929"  # rawPredict on Anthropic's Vertex paths, natively too
SYSTEM = [{"type": "text", "text": "You are Claude Code, a careful engineer.",
           "cache_control": {"type": "ephemeral"}}]
READ = {"name": "Read", "description": "Reads a file", "cache_control": {"type": "ephemeral"},
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
THINKING = {"type": "enabled", "budget_tokens": 1024}


def _client(stack, key: str | None = None, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.edge_url, api_key=key or stack.master_key,
                               max_retries=0, **kw)


def _words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def _micros(usage) -> int:
    """The catalog's price for Anthropic's usage (genai-prices itself, not the gateway's code)."""
    cached, written = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    price = calc_price(Usage(input_tokens=usage.input_tokens + cached + written,
                             cache_read_tokens=cached, cache_write_tokens=written,
                             output_tokens=usage.output_tokens),
                       model_ref="claude-sonnet-4-5", provider_id="anthropic").total_price
    return int((Decimal(price) * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_cache_control_reaches_anthropic_and_cache_tokens_are_billed_once_at_cache_rates(stack):
    key_id, secret = create_key(stack)
    client = _client(stack, secret)
    text = "explain the cache of this long conversation please"
    read = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, system=SYSTEM, tools=[READ], metadata={"user_id": "u-1"},
        messages=[{"role": "user", "content": text}])
    written = client.messages.create(
        model=MODEL, max_tokens=100, system=SYSTEM, messages=[
            {"role": "user", "content": [{"type": "text", "text": f"{text} [fake:cache-write]",
                                          "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}])
    with client.messages.stream(model=MODEL, max_tokens=100, system=SYSTEM,
                                messages=[{"role": "user", "content": text}]) as stream:
        streamed = stream.get_final_message()
    reply = read.parse()
    # The fake counts half the prompt as cached only when it saw a cache_control.
    total = _words(SYSTEM[0]["text"], text)
    assert (reply.usage.input_tokens, reply.usage.cache_read_input_tokens) == (total - total // 2, total // 2)
    assert reply.usage.cache_read_input_tokens > 0 and reply.model == MODEL
    assert written.usage.cache_creation_input_tokens == _words(
        SYSTEM[0]["text"], text, "[fake:cache-write]") // 2 > 0
    assert streamed.usage.cache_read_input_tokens == total // 2  # message_start's, as sent
    assert streamed.usage.output_tokens == _words("Echo:", text)

    records = wait_for_records(stack, key_id, 3)
    by_id = {r["request_id"]: r for r in records}
    assert len(records) == 3 and len(by_id) == 3  # one record each
    first = by_id[read.headers["x-request-id"]]
    for record, usage in ((first, reply.usage),
                          *((r, written.usage) for r in records if r.get("cache_write_prompt_tokens")),
                          *((r, streamed.usage) for r in records if r.get("stream"))):
        assert record["prompt_tokens"] == (usage.input_tokens + usage.cache_read_input_tokens
                                           + usage.cache_creation_input_tokens)
        assert record.get("cached_prompt_tokens", 0) == usage.cache_read_input_tokens
        assert record.get("cache_write_prompt_tokens", 0) == usage.cache_creation_input_tokens
        assert record["completion_tokens"] == usage.output_tokens
        assert record["cost_micros_usd"] == _micros(usage) > 0
    assert sum(1 for r in records if r.get("cache_write_prompt_tokens")) == 1
    assert sum(1 for r in records if r.get("stream")) == 1
    assert Decimal(read.headers["x-switchboard-cost-usd"]) * 1_000_000 == first["cost_micros_usd"]


@pytest.mark.parametrize("model", [MODEL, BEDROCK, VERTEX])
def test_thinking_streams_with_its_signature_and_goes_back_in_the_next_turn(stack, model):
    client = _client(stack, default_headers={
        "anthropic-beta": "interleaved-thinking-2025-05-14,claude-code-20250219"})
    question = [{"role": "user", "content": "think about this"}]
    with client.messages.with_streaming_response.create(
            model=model, max_tokens=2048, thinking=THINKING, messages=question, stream=True) as raw:
        assert raw.headers["x-switchboard-betas-not-passed"] == "claude-code-20250219"
        body = b"".join(raw.iter_bytes())
    assert b"event: content_block_delta\ndata: " in body and b'"signature_delta"' in body
    assert b"cost_usd" not in body  # the cost is the trailer's: Anthropic's events stay its own
    with client.messages.stream(model=model, max_tokens=2048, thinking=THINKING,
                                messages=question) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    thinking, text = final.content
    assert (thinking.type, thinking.thinking, thinking.signature) == (
        "thinking", "Thinking about it.", "c2lnbmF0dXJl")
    assert text.text == "Echo: think about this" and final.model == model

    # The SDK's own blocks back in the next turn: the fake refuses a thinking block whose
    # signature is not the one it gave.
    follow = [*question, {"role": "assistant", "content": [b.model_dump() for b in final.content]},
              {"role": "user", "content": "and again"}]
    again = client.messages.create(model=model, max_tokens=2048, thinking=THINKING, messages=follow)
    assert [b.type for b in again.content] == ["thinking", "text"]
    assert again.content[1].text == "Echo: and again"
    forged = [*question, {"role": "assistant", "content": [
        {**thinking.model_dump(), "signature": "Zm9yZ2Vk"}, text.model_dump()]},
        {"role": "user", "content": "and again"}]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=model, max_tokens=2048, thinking=THINKING, messages=forged)
    assert "signature" in info.value.response.json()["error"]["message"]

    # Thinking cannot be translated: a deployment that is not Anthropic's refuses it by name.
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="gpt-4o-mini", max_tokens=2048, thinking=THINKING,
                               messages=question)
    assert "'thinking'" in info.value.response.json()["error"]["message"]


def test_count_tokens_is_anthropics_own_count_for_anthropic_and_an_estimate_elsewhere(stack):
    client = _client(stack)
    messages = [{"role": "user", "content": "how many tokens is this"}]
    raw = client.messages.with_raw_response.count_tokens(
        model=MODEL, system=SYSTEM, tools=[READ], thinking=THINKING, messages=messages)
    assert raw.headers["x-switchboard-token-count"] == "provider"
    # The fake's count: the prompt's words, and each tool's JSON in 8-byte pieces.
    tool_pieces = -(-len(orjson.dumps(READ)) // 8)
    assert raw.parse().input_tokens == _words(SYSTEM[0]["text"], "how many tokens is this") + tool_pieces
    other = client.messages.with_raw_response.count_tokens(model="gpt-4o-mini", messages=messages)
    assert other.headers["x-switchboard-token-count"] == "estimate"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.count_tokens(model=MODEL, messages=[{"role": "assistant", "content": "x"}])
    assert info.value.response.json()["error"]["type"] == "invalid_request_error"


def test_claude_on_vertex_counts_with_vertexs_endpoint_and_serves_chat_completions(stack):
    client = _client(stack)
    messages = [{"role": "user", "content": "how many tokens is this"}]
    raw = client.messages.with_raw_response.count_tokens(model=VERTEX, system=SYSTEM, tools=[READ],
                                                         messages=messages)
    assert raw.headers["x-switchboard-token-count"] == "provider"
    tool_pieces = -(-len(orjson.dumps(READ)) // 8)
    assert raw.parse().input_tokens == _words(SYSTEM[0]["text"], "how many tokens is this") + tool_pieces
    # cache_control reaches Vertex as it came: the fake reads half the prompt from the cache
    cached = client.messages.create(model=VERTEX, max_tokens=100, system=SYSTEM, messages=messages)
    assert cached.usage.cache_read_input_tokens > 0 and cached.model == VERTEX

    chat = openai.OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
    answer = chat.chat.completions.create(model=VERTEX, messages=[
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello there"}])
    assert answer.choices[0].message.content == "Echo: hello there"
    assert answer.usage.completion_tokens == _words("Echo: hello there")
    streamed = chat.chat.completions.create(model=VERTEX, stream=True, stream_options={
        "include_usage": True}, messages=[{"role": "user", "content": "stream this"}])
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: stream this"
    assert chunks[-1].usage.prompt_tokens == _words("stream this")
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=VERTEX, max_tokens=50, messages=[
            {"role": "user", "content": "busy? [fake:error-529]"}])


def test_an_overloaded_anthropic_is_a_529_overloaded_error(stack):
    client = _client(stack)
    for stream in (False, True):
        with pytest.raises(anthropic.OverloadedError) as info:
            client.messages.create(model=MODEL, max_tokens=50, stream=stream, messages=[
                {"role": "user", "content": "busy? [fake:error-529]"}])
        assert info.value.status_code == 529
        assert info.value.response.json()["error"]["type"] == "overloaded_error"
    # Overloaded right after the stream began (before any content): still the call's 529.
    with pytest.raises(anthropic.OverloadedError):
        with client.messages.stream(model=MODEL, max_tokens=50, messages=[
                {"role": "user", "content": "busy [fake:error-first]"}]) as s:
            s.get_final_message()
    # Overloaded midway: Anthropic's own error event, which the SDK raises.
    with pytest.raises(anthropic.APIStatusError) as midway:
        with client.messages.stream(model=MODEL, max_tokens=50, messages=[
                {"role": "user", "content": "one two three [fake:error-event]"}]) as s:
            s.get_final_message()
    assert midway.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_output_guardrails_read_anthropics_own_answer_and_stream(stack):
    redacting = guarded_key(stack, output_rules=[{"check": "pii", "action": "redact"}])
    client = _client(stack, redacting)
    text = f"My card is {CARD} and that is all"
    whole = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": text}])
    assert whole.content[0].text.startswith("Echo: My card is [") and "1111" not in whole.content[0].text
    # The fake streams one word a delta: the card's four groups arrive in four events.
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=THINKING,
                                messages=[{"role": "user", "content": text}]) as stream:
        streamed = stream.get_final_message()
    thinking, answer = streamed.content
    assert thinking.signature == "c2lnbmF0dXJl"  # the stream around the text is Anthropic's own
    assert "1111" not in answer.text and "4111" not in answer.text
    assert answer.text.startswith("Echo: My card is [") and answer.text.endswith("] and that is all")

    blocking = _client(stack, guarded_key(stack, output_rules=[{"check": "pii", "action": "block"}]))
    received = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with blocking.messages.stream(model=MODEL, max_tokens=100, messages=[
                {"role": "user", "content": f"one two three my card is {CARD} four five"}]) as s:
            received.extend(s.text_stream)
    assert "guardrail" in info.value.body["error"]["message"]
    assert "one two three" in "".join(received) and "4111" not in "".join(received)


def test_a_prompt_input_guardrails_redact_reaches_anthropic_redacted(stack):
    client = _client(stack, guarded_key(stack, [{"check": "pii", "action": "redact"}]))
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, system=SYSTEM,
        messages=[{"role": "user", "content": f"Write to {EMAIL} about the order"}])
    answer = raw.parse().content[0].text  # the fake echoes what it was sent
    assert EMAIL not in answer and "[EMAIL]" in answer
    assert "redact:pii/email" in raw.headers["x-switchboard-guardrails"]
