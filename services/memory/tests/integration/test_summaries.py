"""Opt-in summaries through the gateway's /v1/chat/completions (here the fake OpenAI upstream
stands in for the gateway): older turns folded once they pass the trigger, the summary sent in
their place, and a summary made from a state another replica moved past not recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_memory.context import SUMMARY_INTRO, ContextBuilder, ContextRequest
from switchboard_memory.gateway_client import GatewayClient
from switchboard_memory.sessions import NewTurn, Sessions
from switchboard_memory.summaries import Summarizer
from tests.fakes.openai_upstream import start_fake

T0 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def fake():
    async with await start_fake() as running:
        yield running


async def test_older_turns_are_summarized_and_the_summary_replaces_them(memory, tenant, fake,
                                                                        eventually):
    settings = memory.settings.model_copy(update={
        "summary_model": "gpt-4o-mini", "gateway_url": fake.base_url,
        "summary_trigger_tokens": 300, "summary_keep_tokens": 100, "summary_max_tokens": 64})
    gateway = GatewayClient(fake.base_url, "sk-memory-test", 10)
    summarizer = Summarizer(memory.session_repo, gateway, settings)
    sessions = Sessions(memory.session_repo, memory.sessions.embedder, memory.sessions._tokens,
                        settings, on_stored=summarizer.schedule)
    try:
        for i in range(12):
            text = "My name is Alice and I live in Porto." if i == 0 else f"Filler {i} " * 10
            await sessions.append(NewTurn(
                tenant_id=tenant, key_id="k", session_id="s", turn_id=f"t{i}",
                messages=[{"role": "user", "content": text}], answer={"content": "Noted."},
                started_at=T0 + timedelta(minutes=i)))

        async def summarized():
            session = await memory.session_repo.get(tenant, "s", T0)
            return session if session and session.summary else None

        session = await eventually(summarized, timeout=20)
        assert "Alice" in session.summary  # the fake echoes what it was asked to summarise
        (call,) = [r for r in fake.requests if r.path == "/v1/chat/completions"][:1]
        assert call.json["model"] == "gpt-4o-mini"
        assert call.headers["authorization"] == "Bearer sk-memory-test"

        builder = ContextBuilder(sessions, memory.collections, memory.sessions._tokens, settings)
        built = await builder.build(ContextRequest(
            tenant_id=tenant, session_id="s", recall_top_k=0, max_history_tokens=200,
            messages=[{"role": "user", "content": "Where do I live?"}]))
        assert built.summary_used
        assert built.messages[0]["content"].startswith(SUMMARY_INTRO)
        # A summary computed from the state before this one is refused.
        assert not await memory.session_repo.set_summary(tenant, "s", "stale", (T0, "t0"), None)
    finally:
        await summarizer.stop()
        await gateway.close()
