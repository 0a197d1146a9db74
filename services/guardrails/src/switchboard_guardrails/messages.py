"""The texts of an OpenAI chat request that checks read, and the request rebuilt with some of
them changed: string contents and the text parts of content arrays, of every role (tool results
and retrieved documents reach the model as messages too). A tool result (role `tool`, or
`function`, its older name; Anthropic's tool_result blocks arrive as these, and the router sends
retrieved RAG chunks so) is third-party content: the injection checks score it with the indirect
model."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard_common.errors import InvalidRequest


THIRD_PARTY_ROLES = frozenset({"tool", "function"})


@dataclass(frozen=True, slots=True)
class TextRef:
    message_index: int
    part_index: int  # -1: the content is a string
    role: str
    text: str

    @property
    def third_party(self) -> bool:
        return self.role in THIRD_PARTY_ROLES


def texts(messages: Sequence[Any]) -> list[TextRef]:
    found = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{index}] is not an object.", param=f"messages[{index}]")
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            found.append(TextRef(index, -1, role, content))
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    found.append(TextRef(index, part_index, role, part["text"]))
    return found


def with_texts(messages: Sequence[Any], changed: Mapping[tuple[int, int], str]) -> list[Any]:
    """A copy of `messages` with the text at each (message_index, part_index) replaced."""
    out = copy.deepcopy(list(messages))
    for (index, part_index), text in changed.items():
        if part_index < 0:
            out[index]["content"] = text
        else:
            out[index]["content"][part_index]["text"] = text
    return out
