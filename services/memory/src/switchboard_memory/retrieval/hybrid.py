"""Fusing BM25 with embedding similarity: a convex combination of BM25 relative to the query's
best match (0..1) and cosine similarity (-1..1).

Measured on LoCoMo (services/memory/README.md) this beats reciprocal-rank fusion, which throws the
scores' gaps away, and gives a score a threshold can mean something for: a chunk with no query
word in it needs a cosine of 2 * threshold.
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.5  # the weight of BM25


def fuse(bm25: np.ndarray, cosine: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    top = float(bm25.max()) if len(bm25) else 0.0
    lexical = bm25 / top if top > 0 else np.zeros_like(bm25)
    return alpha * lexical + (1 - alpha) * cosine


def top(scores: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores, best first; only among `candidates` (a boolean mask)."""
    if candidates is not None:
        scores = np.where(candidates, scores, -np.inf)
        k = min(k, int(candidates.sum()))
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]
