"""Session memory on SQLite and PostgreSQL: a turn stored exactly once by its id, in the order
its requests started, bounded by TTL and max turns, and invisible to every other tenant."""

from __future__ import annotations

import asyncio

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_memory.sessions import NewTurn, Sessions

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def turn(tenant, turn_id, text, answer="ok", *, session="s1", at=None, system=None):
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    return NewTurn(tenant_id=tenant, key_id="key_a", session_id=session, turn_id=turn_id,
                   messages=messages, answer={"role": "assistant", "content": answer},
                   started_at=at)


async def test_a_turn_is_stored_once_however_often_it_is_appended(memory, tenant):
    first = await memory.sessions.append(turn(tenant, "ev-1", "My name is Alice"))
    again = await asyncio.gather(*(memory.sessions.append(turn(tenant, "ev-1", "My name is Alice"))
                                   for _ in range(3)))
    assert (first.stored_messages, first.turns, first.already_stored) == (2, 1, False)
    assert all(a.already_stored and a.stored_messages == 0 and a.turns == 1 for a in again)
    session, turns = await memory.sessions.get(tenant, "s1")
    assert session.turn_count == 1 and len(turns) == 1
    assert turns[0].messages == [{"role": "user", "content": "My name is Alice"},
                                 {"role": "assistant", "content": "ok"}]


async def test_turns_keep_the_order_their_requests_started_in(memory, tenant):
    await memory.sessions.append(turn(tenant, "ev-2", "second", at=T0 + timedelta(seconds=2)))
    await memory.sessions.append(turn(tenant, "ev-3", "third", at=T0 + timedelta(seconds=3)))
    # Replayed late from a router's journal: lands in its place.
    await memory.sessions.append(turn(tenant, "ev-1", "first", at=T0 + timedelta(seconds=1)))
    _, turns = await memory.sessions.get(tenant, "s1")
    assert [t.messages[0]["content"] for t in turns] == ["first", "second", "third"]


async def test_another_tenant_sees_nothing_of_a_session(memory, tenant):
    await memory.sessions.append(turn(tenant, "ev-1", "secret"))
    with pytest.raises(NotFound):
        await memory.sessions.get(tenant + "-other", "s1")
    with pytest.raises(NotFound):
        await memory.sessions.delete(tenant + "-other", "s1")
    other = await memory.sessions.append(turn(tenant + "-other", "ev-1", "mine"))
    assert (other.turns, other.already_stored) == (1, False)  # its own session, same names
    _, turns = await memory.sessions.get(tenant, "s1")
    assert [t.messages[0]["content"] for t in turns] == ["secret"]


async def test_the_oldest_turns_go_past_max_turns(memory, tenant):
    sessions = Sessions(memory.session_repo, memory.sessions.embedder, memory.sessions._tokens,
                        replace_settings(memory.settings, session_max_turns=3))
    for i in range(5):
        done = await sessions.append(turn(tenant, f"ev-{i}", f"m{i}", at=T0 + timedelta(i)))
    assert done.turns == 3
    _, turns = await sessions.get(tenant, "s1")
    assert [t.messages[0]["content"] for t in turns] == ["m2", "m3", "m4"]


async def test_an_idle_session_expires_and_the_sweep_deletes_it(memory, tenant):
    now = [T0]
    sessions = Sessions(memory.session_repo, memory.sessions.embedder, memory.sessions._tokens,
                        replace_settings(memory.settings, session_ttl_seconds=60),
                        clock=lambda: now[0])
    await sessions.append(turn(tenant, "ev-1", "hello"))
    now[0] = T0 + timedelta(seconds=61)
    with pytest.raises(NotFound):
        await sessions.get(tenant, "s1")
    # Appending again starts afresh rather than reviving the old turns.
    fresh = await sessions.append(turn(tenant, "ev-2", "new start"))
    assert fresh.turns == 1
    now[0] = T0 + timedelta(seconds=200)
    assert await memory.session_repo.sweep(now[0]) >= 1
    assert await memory.session_repo.get(tenant, "s1", T0) is None


async def test_a_client_resending_the_conversation_is_not_stored_twice(memory, tenant):
    await memory.sessions.append(turn(tenant, "ev-1", "My name is Alice", "Hi Alice"))
    resent = NewTurn(tenant_id=tenant, key_id="key_a", session_id="s1", turn_id="ev-2", messages=[
        {"role": "user", "content": "My name is Alice"},
        {"role": "assistant", "content": "Hi Alice"},
        {"role": "user", "content": "What is my name?"}],
        answer={"role": "assistant", "content": "Alice"})
    done = await memory.sessions.append(resent)
    assert done.stored_messages == 2
    session, turns = await memory.sessions.get(tenant, "s1")
    assert [m["content"] for t in turns for m in t.messages] == [
        "My name is Alice", "Hi Alice", "What is my name?", "Alice"]


async def test_the_system_prompt_is_kept_and_replaced_by_a_newer_one(memory, tenant):
    await memory.sessions.append(turn(tenant, "ev-1", "hi", system="Answer in French."))
    await memory.sessions.append(turn(tenant, "ev-2", "again"))
    session, _ = await memory.sessions.get(tenant, "s1")
    assert session.system_prompt == "Answer in French."
    await memory.sessions.append(turn(tenant, "ev-3", "x", system="Answer in German."))
    assert (await memory.sessions.get(tenant, "s1"))[0].system_prompt == "Answer in German."


async def test_sessions_list_newest_first_in_pages_and_delete(memory, tenant):
    for i in range(3):
        await memory.sessions.append(turn(tenant, "ev", "hi", session=f"s{i}"))
    first = await memory.sessions.page(tenant, "", None, 2)
    rest = await memory.sessions.page(tenant, "", first.next_cursor, 2)
    names = [s.session_id for s in first.sessions + rest.sessions]
    assert sorted(names) == ["s0", "s1", "s2"] and rest.next_cursor is None
    assert (await memory.sessions.page(tenant, "key_b", None, 10)).sessions == []
    assert await memory.sessions.delete(tenant, "s1") == 1
    with pytest.raises(NotFound):
        await memory.sessions.get(tenant, "s1")


@pytest.mark.parametrize("session_id", ["", "x" * 201, "tab\there"])
async def test_bad_session_ids_are_refused(memory, tenant, session_id):
    with pytest.raises(InvalidRequest):
        await memory.sessions.append(turn(tenant, "ev-1", "hi", session=session_id))


def replace_settings(settings, **changes):
    return settings.model_copy(update=changes)


