"""BuildContext over a real store: the Alice example, the token budget for a small-context model
(oldest dropped first, the system prompt kept), recall of an older relevant turn, RAG chunks
with their source ids, and nothing of another tenant's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common.errors import NotFound

from switchboard_memory.context import RAG_INTRO, RECALL_INTRO, ContextRequest
from switchboard_memory.domain import DocumentInput
from switchboard_memory.sessions import NewTurn

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
ASK = [{"role": "user", "content": "What is my name?"}]


async def say(memory, tenant, i, text, answer, session="s1"):
    await memory.sessions.append(NewTurn(
        tenant_id=tenant, key_id="key_a", session_id=session, turn_id=f"ev-{i}",
        messages=[{"role": "user", "content": text}],
        answer={"role": "assistant", "content": answer}, started_at=T0 + timedelta(minutes=i)))


async def test_the_first_exchange_goes_with_the_second(memory, tenant):
    await say(memory, tenant, 1, "My name is Alice", "Nice to meet you, Alice.")
    built = await memory.context.build(ContextRequest(tenant_id=tenant, session_id="s1",
                                                      messages=ASK, model="gpt-3.5-turbo"))
    assert built.messages == [{"role": "user", "content": "My name is Alice"},
                              {"role": "assistant", "content": "Nice to meet you, Alice."}, *ASK]
    assert (built.history_turns, built.history_messages, built.dropped_turns) == (1, 2, 0)
    assert built.prompt_tokens > built.history_tokens > 0


async def test_an_unknown_session_adds_nothing(memory, tenant):
    built = await memory.context.build(ContextRequest(tenant_id=tenant, session_id="new",
                                                      messages=ASK))
    assert built.messages == ASK and built.history_turns == 0


async def test_a_small_window_drops_the_oldest_turns_and_keeps_the_system_prompt(memory, tenant):
    for i in range(30):
        await say(memory, tenant, i, f"Message {i}: " + "words " * 40, f"Reply {i}.")
    system = {"role": "system", "content": "You are terse."}
    built = await memory.context.build(ContextRequest(
        tenant_id=tenant, session_id="s1", messages=[system, *ASK], model="gpt-4",
        context_window_tokens=1024, reserve_output_tokens=256, recall_top_k=0))
    assert built.messages[0] == system and built.messages[-1] == ASK[0]
    history = built.messages[1:-1]
    assert history and history[-1]["content"] == "Reply 29."  # the newest turns stay
    assert not any("Message 0:" in m["content"] for m in history)  # the oldest went
    assert built.prompt_tokens <= 1024 - 256
    assert built.dropped_turns == 30 - built.history_turns > 0


async def test_the_stored_system_prompt_is_used_when_the_request_has_none(memory, tenant):
    await memory.sessions.append(NewTurn(
        tenant_id=tenant, key_id="key_a", session_id="s1", turn_id="ev-1",
        messages=[{"role": "system", "content": "Speak like a pirate."},
                  {"role": "user", "content": "hi"}], answer={"content": "Arr."}))
    built = await memory.context.build(ContextRequest(tenant_id=tenant, session_id="s1",
                                                      messages=ASK))
    assert built.messages[0] == {"role": "system", "content": "Speak like a pirate."}


async def test_an_older_relevant_turn_comes_back_as_an_excerpt(memory, tenant):
    await say(memory, tenant, 0, "My cat is named Pixel and she is seven.", "Lovely.")
    for i in range(1, 40):
        await say(memory, tenant, i, f"Tell me fact {i} about rivers. " + "flow " * 30, "Sure.")
    built = await memory.context.build(ContextRequest(
        tenant_id=tenant, session_id="s1", messages=[
            {"role": "user", "content": "What is my cat's name?"}],
        context_window_tokens=2048, reserve_output_tokens=256, recall_top_k=2))
    excerpts = [m["content"] for m in built.messages if m["content"].startswith(RECALL_INTRO)]
    assert excerpts and "Pixel" in excerpts[0]
    assert built.recalled_turns >= 1


async def test_zero_history_tokens_send_no_history(memory, tenant):
    await say(memory, tenant, 1, "My name is Alice", "Hi")
    built = await memory.context.build(ContextRequest(tenant_id=tenant, session_id="s1",
                                                      messages=ASK, max_history_tokens=0))
    assert built.messages == ASK


async def test_rag_injects_the_best_chunks_with_their_ids(memory, tenant):
    caller = memory.caller(tenant)
    await memory.collections.create(caller, "company_docs", "", None, None)
    job = await memory.collections.add_documents(tenant, "company_docs", [
        DocumentInput("refunds", "Refunds are paid within 14 days of a return.", {"team": "cs"}),
        DocumentInput("vacation", "Employees get 25 vacation days a year.", {"team": "hr"}),
        DocumentInput("parking", "The car park opens at 7 am.", {"team": "facilities"})])
    assert job.state == "succeeded"
    built = await memory.context.build(ContextRequest(
        tenant_id=tenant, rag_collection="company_docs", rag_top_k=1,
        messages=[{"role": "user", "content": "How many vacation days do I get?"}]))
    assert [c.chunk_id for c in built.chunks] == ["vacation#0"]
    (context,) = [m for m in built.messages if m["content"].startswith(RAG_INTRO)]
    assert "[vacation#0]\nEmployees get 25 vacation days a year." in context["content"]
    assert built.messages[-1]["content"] == "How many vacation days do I get?"
    # A chunk a guardrail flagged is left out.
    again = await memory.context.build(ContextRequest(
        tenant_id=tenant, rag_collection="company_docs", rag_top_k=1,
        exclude_chunk_ids=("vacation#0",),
        messages=[{"role": "user", "content": "How many vacation days do I get?"}]))
    assert [c.chunk_id for c in again.chunks] != ["vacation#0"]
    # Another tenant has no such collection.
    with pytest.raises(NotFound):
        await memory.context.build(ContextRequest(
            tenant_id=tenant + "-other", rag_collection="company_docs", messages=ASK))


async def test_a_resent_conversation_is_not_sent_twice(memory, tenant):
    await say(memory, tenant, 1, "My name is Alice", "Hi Alice.")
    resent = [{"role": "user", "content": "My name is Alice"},
              {"role": "assistant", "content": "Hi Alice."}, *ASK]
    built = await memory.context.build(ContextRequest(tenant_id=tenant, session_id="s1",
                                                      messages=resent))
    assert built.messages == resent and built.history_turns == 0
