"""A session turn survives the router's kill -9 mid-stream: the next start stores it from the
router's journal with the part streamed so far, outcome interrupted, exactly once — also when the
replay runs twice (a start from the journal as it was before the first replay)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.e2e.conftest import _start_stack
from tests.e2e.router_kill import kill_mid_stream, kill_router, restart_router
from tests.e2e.test_memory_admin import call, tenant_key
from tests.e2e.test_memory_requests import new_session


@pytest.fixture
def own_stack(tmp_path, fake_openai):
    s = _start_stack(tmp_path / "stack", fake_openai)
    yield s
    s.stop()


def stored_turns(stack, key: str, session: str, timeout: float = 20) -> dict:
    """The session once it holds a turn (memory is sent the turn in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = call(stack, "GET", f"/api/memory/sessions/{session}", key)
        if got.status_code == 200 and got.json().get("turns"):
            return got.json()
        time.sleep(0.2)
    raise AssertionError(f"no turn stored in {timeout}s: {got.status_code} {got.text}")


def replays_logged(stack) -> int:
    return stack.services["router"].log_tail(400).count("journaled turns stored")


def test_kill_9_mid_stream_stores_the_turn_once_with_the_part_streamed(own_stack, tmp_path):
    stack = own_stack
    _, key = tenant_key(stack)
    session = new_session()
    words = " ".join(f"word{i}" for i in range(40))
    body = {"model": "gpt-4o-mini", "stream": True, "session_id": session,
            "messages": [{"role": "user", "content": f"{words} [fake:slow-150]"}]}
    # 20 chunks of 150 ms: 3 s in, past the first piece's snapshot and a 1 s one after it.
    _, received = kill_mid_stream(stack, body, key)
    client_saw = "".join(received)
    assert "word39" not in client_saw  # cut mid-answer
    journal = stack.data_dir / "router-journal"
    shutil.copytree(journal, tmp_path / "journal-at-the-kill")
    assert call(stack, "GET", f"/api/memory/sessions/{session}", key).status_code == 404

    restart_router(stack)
    first = stored_turns(stack, key, session)
    (turn,) = first["turns"]
    assert turn["outcome"] == "TURN_OUTCOME_INTERRUPTED"
    user, assistant = first["messages"]
    assert (user["role"], user["content"]) == ("user", body["messages"][0]["content"])
    # What a snapshot held: some of the answer, never more than the client received.
    assert assistant["role"] == "assistant"
    assert assistant["content"] and client_saw.startswith(assistant["content"])

    # As if this start had died before journaling that memory has the turn: replayed again.
    kill_router(stack)
    shutil.rmtree(journal)
    shutil.copytree(tmp_path / "journal-at-the-kill", journal)
    restart_router(stack)
    deadline = time.monotonic() + 20
    while replays_logged(stack) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replays_logged(stack) == 1  # this start sent the turn again
    again = stored_turns(stack, key, session)
    assert again["turns"] == first["turns"] and again["messages"] == first["messages"]
