"""An in-memory hybrid index: BM25 postings and a float32 matrix of unit vectors, rows added and
deleted in place. Rows carry an opaque key (a chunk's row id, a turn's message) for the caller."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from switchboard_memory.retrieval import analysis, hybrid
from switchboard_memory.retrieval.bm25 import BM25

_GROW = 1.5


@dataclass(frozen=True)
class Scored:
    row: int
    key: Hashable
    score: float
    similarity: float


class HybridIndex:
    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._bm25 = BM25()
        self._vectors = np.zeros((16, dimensions), dtype=np.float32)
        self._alive = np.zeros(16, dtype=bool)
        self._keys: list[Hashable] = []
        self._rows: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self) -> set[Hashable]:
        return set(self._rows)

    def row_of(self, key: Hashable) -> int:
        return self._rows[key]

    def add(self, keys: Sequence[Hashable], texts: Sequence[str], vectors: np.ndarray) -> None:
        start = len(self._keys)
        needed = start + len(keys)
        if needed > len(self._alive):
            size = max(needed, int(len(self._alive) * _GROW))
            self._vectors = np.resize(self._vectors, (size, self.dimensions))
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), bool)])
        self._vectors[start:needed] = vectors
        self._alive[start:needed] = True
        self._bm25.add(analysis.terms(t) for t in texts)
        for offset, key in enumerate(keys):
            self._keys.append(key)
            self._rows[key] = start + offset

    def remove(self, keys: Sequence[Hashable]) -> None:
        for key in keys:
            row = self._rows.pop(key, None)
            if row is not None:
                self._alive[row] = False

    def search(self, query: str, vector: np.ndarray, k: int,
               candidates: np.ndarray | None = None) -> list[Scored]:
        """The k best live rows by fused score; `candidates` narrows them (a mask over rows)."""
        n = len(self._keys)
        alive = self._alive[:n] if candidates is None else self._alive[:n] & candidates[:n]
        if not alive.any():
            return []
        lexical = self._bm25.scores(analysis.terms(query), alive)
        cosine = self._vectors[:n] @ vector
        scores = hybrid.fuse(np.where(alive, lexical, 0), cosine)
        return [Scored(int(r), self._keys[r], float(scores[r]), float(cosine[r]))
                for r in hybrid.top(scores, k, alive)]

    def rows(self) -> int:
        """Rows ever added (dead ones included): the length of a candidates mask."""
        return len(self._keys)
