"""Pure helpers over chat messages: which are the system prompt, what a message says, whether a
client resent messages the session holds already, and a turn rendered as text."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from switchboard_memory.domain import Message, Turn
from switchboard_memory.tokens import message_text

SYSTEM_ROLES = ("system", "developer")
# What an answer keeps: the fields that a later request replays (OpenAI's assistant message).
ANSWER_FIELDS = ("role", "content", "tool_calls", "function_call", "refusal", "name", "audio")


def split_system(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """(system and developer messages, the rest), each in order."""
    system = [m for m in messages if m.get("role") in SYSTEM_ROLES]
    return system, [m for m in messages if m.get("role") not in SYSTEM_ROLES]


def system_prompt(system: Sequence[Message]) -> str | None:
    """The system prompt a session keeps: the text of the request's system messages, or None
    when the request had none (the stored one then stays)."""
    if not system:
        return None
    return "\n\n".join(message_text(m) for m in system)


def answer_message(answer: dict) -> Message:
    message = {k: answer[k] for k in ANSWER_FIELDS if answer.get(k) is not None}
    message.setdefault("role", "assistant")
    message.setdefault("content", None if message.get("tool_calls") else "")
    return message


def overlap(stored: Sequence[Message], new: Sequence[Message]) -> int:
    """How many of `new`'s first messages are the last messages already stored: a client that
    resends the whole conversation with a session_id must not have it stored (or sent) twice."""
    if len(new) < 2 or not stored:
        return 0
    keys_stored = [_key(m) for m in stored[-len(new):]]
    keys_new = [_key(m) for m in new]
    for m in range(min(len(keys_stored), len(new) - 1), 0, -1):
        if keys_new[:m] == keys_stored[-m:]:
            return m
    return 0


def _key(message: Message) -> bytes:
    content = message.get("content")
    if isinstance(content, list):  # text parts compare as the text they hold
        content = message_text({"content": content})
    return orjson.dumps([message.get("role"), content or "", message.get("tool_calls") or None,
                         message.get("tool_call_id") or None], option=orjson.OPT_SORT_KEYS)


def render(turn: Turn) -> str:
    """A turn as plain text (recalled excerpts and summaries quote turns this way)."""
    lines = []
    for message in turn.messages:
        text = message_text(message)
        if text:
            lines.append(f"{message.get('role', 'user')}: {text}")
    return f"[{turn.started_at:%Y-%m-%d %H:%M} UTC]\n" + "\n".join(lines)


def last_user_text(messages: Sequence[Message]) -> str:
    """What retrieval searches for: the newest user message's text (else the newest message's)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""
