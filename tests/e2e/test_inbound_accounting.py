"""The inbound APIs go through the chat path's admission: a key's request limit refuses them (in
each API's error shape, with retry-after), and each request leaves exactly one usage record with
the provider's counts."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from tests.e2e.test_rate_limits import _clear_of_a_minute_turning
from tests.e2e.test_usage_billing import create_key, usage_records, wait_for_records

pytestmark = pytest.mark.timeout(180)


def test_limits_and_one_usage_record_per_request(stack):
    key_id, secret = create_key(stack, rate_limits={"requests_per_minute": 4})
    claude = anthropic.Anthropic(base_url=stack.edge_url, api_key=secret, max_retries=0)
    gpt = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
    _clear_of_a_minute_turning()
    ids = []
    raw = claude.messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "count me once"}])
    assert raw.headers["x-ratelimit-remaining-requests"] == "3"
    ids.append(raw.headers["x-request-id"])
    with claude.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=50,
                                messages=[{"role": "user", "content": "and me too"}]) as stream:
        final = stream.get_final_message()
    ids.append(stream.response.headers["x-request-id"])
    raw_response = gpt.responses.with_raw_response.create(model="gpt-4o-mini", input="me as well")
    ids.append(raw_response.headers["x-request-id"])
    with gpt.responses.stream(model="anthropic/claude-sonnet-4-5", input="the last one") as responses:
        last = responses.get_final_response()
    ids.append(responses._raw_stream.response.headers["x-request-id"])  # the helper keeps no other handle

    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert refused.value.response.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.value.response.headers["retry-after"]) > 0
    with pytest.raises(openai.RateLimitError) as refused_openai:
        gpt.responses.create(model="gpt-4o-mini", input="x")
    assert refused_openai.value.response.json()["error"]["code"] == "rate_limit_exceeded"

    wanted = len(ids) + 2  # the refusals are recorded too
    wait_for_records(stack, key_id, wanted)
    time.sleep(1.0)  # anything counted twice would show up by now
    records = usage_records(stack, key_id)
    assert len(records) == wanted
    by_id = {r["request_id"]: r for r in records}
    assert set(ids) <= set(by_id)
    assert [by_id[i]["outcome"] for i in ids] == ["success"] * 4
    assert (by_id[ids[1]]["prompt_tokens"], by_id[ids[1]]["completion_tokens"]) == (
        final.usage.input_tokens, final.usage.output_tokens)
    assert (by_id[ids[3]]["prompt_tokens"], by_id[ids[3]]["completion_tokens"]) == (
        last.usage.input_tokens, last.usage.output_tokens)
    assert by_id[ids[1]]["provider"] == "anthropic" and by_id[ids[2]]["provider"] == "openai"
