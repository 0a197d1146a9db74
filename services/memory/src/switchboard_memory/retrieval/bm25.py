"""Okapi BM25 over an index that grows and shrinks in place (chunks added, chunks deleted).

Postings are kept per term and turned into numpy arrays for the terms a query names, so scoring
costs O(postings of the query's terms); document frequency and average length count only live
rows, so a deleted chunk stops weighing at once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

K1 = 1.2
B = 0.75


class BM25:
    def __init__(self) -> None:
        self._postings: dict[str, tuple[list[int], list[int]]] = {}
        self._arrays: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
        self._lengths: list[int] = []
        self._length_array = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, documents: Iterable[Sequence[str]]) -> None:
        """Append documents (their terms) as rows len(self), len(self)+1, ..."""
        for terms in documents:
            row = len(self._lengths)
            self._lengths.append(len(terms))
            for term, count in Counter(terms).items():
                rows, counts = self._postings.setdefault(term, ([], []))
                rows.append(row)
                counts.append(count)
        self._length_array = np.asarray(self._lengths, dtype=np.float32)

    def scores(self, query_terms: Sequence[str], alive: np.ndarray | None = None) -> np.ndarray:
        """A score per row (0 where no query term occurs); dead rows (alive False) score 0."""
        n = len(self._lengths)
        out = np.zeros(n, dtype=np.float32)
        if n == 0:
            return out
        lengths = self._length_array if alive is None else self._length_array * alive
        live = n if alive is None else int(alive.sum())
        if live == 0:
            return out
        average = float(lengths.sum()) / live or 1.0
        for term, weight in Counter(query_terms).items():
            posting = self._posting(term)
            if posting is None:
                continue
            rows, counts = posting
            if alive is not None:
                keep = alive[rows]
                rows, counts = rows[keep], counts[keep]
            if len(rows) == 0:
                continue
            idf = math.log(1 + (live - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = counts + K1 * (1 - B + B * lengths[rows] / average)
            out[rows] += weight * idf * counts * (K1 + 1) / norm  # rows are unique per term
        return out

    def _posting(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        lists = self._postings.get(term)
        if lists is None:
            return None
        cached = self._arrays.get(term)
        if cached is None or cached[0] != len(lists[0]):
            cached = (len(lists[0]), np.asarray(lists[0], dtype=np.int64),
                      np.asarray(lists[1], dtype=np.float32))
            self._arrays[term] = cached
        return cached[1], cached[2]
