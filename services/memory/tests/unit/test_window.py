"""The window of earlier turns: newest first within the budget, never opening on a tool result,
and the most relevant older turns ranked by words and meaning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from switchboard_memory import window
from switchboard_memory.domain import Turn

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def turn(i: int, *messages) -> Turn:
    return Turn(turn_id=f"t{i}", started_at=T0 + timedelta(minutes=i), messages=list(messages))


def test_the_newest_turns_that_fit_oldest_dropped_first():
    turns = [turn(i, {"role": "user", "content": f"m{i}"}) for i in range(5)]
    win = window.newest_fitting(turns, 25, cost=lambda t: 10)
    assert [t.turn_id for t in win.turns] == ["t3", "t4"] and win.tokens == 20


def test_a_window_never_opens_on_a_tool_result():
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    turns = [turn(0, {"role": "user", "content": "weather?"}, call),
             turn(1, {"role": "tool", "tool_call_id": "c", "content": "sunny"},
                  {"role": "assistant", "content": "It is sunny."}),
             turn(2, {"role": "user", "content": "thanks"})]
    win = window.newest_fitting(turns, 20, cost=lambda t: 10)
    assert [t.turn_id for t in win.turns] == ["t2"]


def test_relevant_turns_come_best_first():
    turns = [turn(0, {"role": "user", "content": "My dog is called Rex."}),
             turn(1, {"role": "user", "content": "The weather is nice today."}),
             turn(2, {"role": "user", "content": "I work as a nurse in Lyon."})]
    picked = window.relevant(turns, "What is my dog's name?", None, 1, dimensions=4)
    assert [t.turn_id for t in picked] == ["t0"]
    assert window.relevant(turns, "", np.zeros(4, np.float32), 2, 4) == []
