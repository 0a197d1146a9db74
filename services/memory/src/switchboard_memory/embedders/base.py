"""What every embedder offers: texts in, unit-length float32 vectors out, one row per text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str  # what a collection records, e.g. "paraphrase-MiniLM-L3-v2" or a gateway model
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An (len(texts), dimensions) float32 array of unit vectors (cosine = dot product)."""
        ...


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
