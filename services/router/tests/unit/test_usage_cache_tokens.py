"""The provider's cache and reasoning counts, as the codecs parse them, reach the usage event
(billing prices cached reads and cache writes apart; they are parts of prompt_tokens, not more)."""

from __future__ import annotations

import orjson

from switchboard_common.journal import SegmentLog

from switchboard_router.codecs import anthropic, openai
from switchboard_router.domain import Deployment, Endpoint, Target
from switchboard_router.journal import UsageJournal
from switchboard_router.usage import Exchange, UsageRecorder
from switchboard.events.v1 import events_pb2

DEP = Deployment(route="m", name="p/m", provider="p", model="up", weight=1, timeout_seconds=1,
                 read_timeout_seconds=1, connect_timeout_seconds=1)


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[events_pb2.UsageRecorded] = []

    def submit(self, msg_id, payload, trace_headers=None) -> None:
        self.sent.append(events_pb2.UsageRecorded.FromString(payload))

    async def drain(self, timeout) -> int:
        return 0


async def _event(tmp_path, tokenizer, usage) -> events_pb2.UsageRecorded:
    journal = UsageJournal(SegmentLog(tmp_path / "journal", flush_seconds=0.001))
    journal.recover()
    publisher = _Publisher()
    recorder = UsageRecorder(journal, publisher, "usage.recorded", tokenizer)
    ex = Exchange(request_id="r", endpoint=Endpoint.CHAT, started=1.0, model="m",
                  body={"model": "m", "messages": []}, target=Target(DEP, "up"), key_id="k",
                  answered=True, usage=usage, ended=2.0)
    recorder.begin(ex)
    recorder.record(ex)
    await recorder.drain(1)
    journal.close()
    return publisher.sent[0]


async def test_anthropic_cache_counts_reach_the_event(tmp_path, tokenizer):
    usage = anthropic.tokens({"input_tokens": 10, "cache_read_input_tokens": 100,
                              "cache_creation_input_tokens": 5, "output_tokens": 7,
                              "output_tokens_details": {"thinking_tokens": 3}})
    event = await _event(tmp_path, tokenizer, usage)
    assert (event.prompt_tokens, event.cached_prompt_tokens, event.cache_write_prompt_tokens) == (115, 100, 5)
    assert (event.completion_tokens, event.reasoning_tokens, event.total_tokens) == (7, 3, 122)


async def test_openai_cached_and_reasoning_tokens_reach_the_event(tmp_path, tokenizer):
    _, usage = openai.parse_response(orjson.dumps({"usage": {
        "prompt_tokens": 50, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 12}}}))
    event = await _event(tmp_path, tokenizer, usage)
    assert (event.prompt_tokens, event.cached_prompt_tokens, event.cache_write_prompt_tokens) == (50, 32, 0)
    assert (event.completion_tokens, event.reasoning_tokens) == (20, 12)
