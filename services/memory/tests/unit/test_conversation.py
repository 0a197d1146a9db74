"""Messages: the system prompt apart, answers trimmed to what replays, resent history found."""

from __future__ import annotations

from switchboard_memory import conversation


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def test_system_messages_are_the_prompt():
    system, rest = conversation.split_system([{"role": "system", "content": "Be brief."},
                                              u("hi")])
    assert conversation.system_prompt(system) == "Be brief." and rest == [u("hi")]
    assert conversation.system_prompt([]) is None


def test_an_answer_keeps_what_a_later_request_replays():
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    kept = conversation.answer_message({"role": "assistant", "content": None, "tool_calls": call,
                                        "annotations": [], "index": 0})
    assert kept == {"role": "assistant", "content": None, "tool_calls": call}
    assert conversation.answer_message({"content": "hi"}) == a("hi")


def test_a_resent_conversation_overlaps_the_stored_tail():
    stored = [u("My name is Alice"), a("Hello Alice"), u("I like tea"), a("Noted")]
    assert conversation.overlap(stored, [*stored, u("What is my name?")]) == 4
    assert conversation.overlap(stored, [u("I like tea"), a("Noted"), u("more")]) == 2
    assert conversation.overlap(stored, [u("What is my name?")]) == 0
    assert conversation.overlap(stored, [u("Hello"), u("again")]) == 0
    # Text parts compare as their text.
    parts = {"role": "user", "content": [{"type": "text", "text": "I like tea"}]}
    assert conversation.overlap(stored, [parts, a("Noted"), u("x")]) == 2
