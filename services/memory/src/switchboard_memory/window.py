"""Which earlier turns fit a token budget: pure functions, no I/O.

The newest turns go back verbatim, oldest dropped first (LangChain's trim_messages, OpenAI's
last_messages); a window never opens on a tool result whose call it left out, since providers
refuse such a conversation. Older turns most relevant to the new message come back as quoted
excerpts, ranked by the same hybrid retrieval as collections, making room by dropping the oldest
window turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from switchboard_memory.domain import Turn
from switchboard_memory.retrieval.index import HybridIndex
from switchboard_memory.tokens import message_text


@dataclass(frozen=True)
class Window:
    turns: list[Turn]  # verbatim, oldest first
    tokens: int


def newest_fitting(turns: Sequence[Turn], budget: int, cost: Callable[[Turn], int]) -> Window:
    chosen: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        c = cost(turn)
        if used + c > budget:
            break
        chosen.append(turn)
        used += c
    chosen.reverse()
    while chosen and chosen[0].messages and chosen[0].messages[0].get("role") == "tool":
        used -= cost(chosen.pop(0))
    return Window(chosen, used)


def relevant(turns: Sequence[Turn], query: str, vector: np.ndarray | None, k: int,
             dimensions: int) -> list[Turn]:
    """The k turns (of `turns`) whose messages best match the query, best first."""
    if k <= 0 or not turns or not query.strip():
        return []
    index = HybridIndex(dimensions)
    keys, texts, vectors = [], [], []
    for t_index, turn in enumerate(turns):
        for m_index, message in enumerate(turn.messages):
            text = message_text(message)
            if not text:
                continue
            keys.append((t_index, m_index))
            texts.append(text)
            has = turn.vectors is not None and vector is not None
            vectors.append(turn.vectors[m_index] if has else np.zeros(dimensions, np.float32))
    if not keys:
        return []
    index.add(keys, texts, np.stack(vectors))
    query_vector = vector if vector is not None else np.zeros(dimensions, np.float32)
    picked: list[int] = []
    for scored in index.search(query, query_vector, len(keys)):
        t_index = scored.key[0]  # type: ignore[index]
        if t_index not in picked:
            picked.append(t_index)
        if len(picked) == k:
            break
    return [turns[i] for i in picked]
