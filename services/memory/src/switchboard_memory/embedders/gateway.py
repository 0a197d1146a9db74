"""Embeddings from a model the gateway serves (/v1/embeddings of any configured provider)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from switchboard_memory.embedders.base import unit_rows
from switchboard_memory.gateway_client import GatewayClient

BATCH = 256  # inputs per call, well inside every provider's limit


class GatewayEmbedder:
    def __init__(self, client: GatewayClient, model: str, dimensions: int) -> None:
        self._client = client
        self.name = model
        self.dimensions = dimensions

    @classmethod
    async def probe(cls, client: GatewayClient, model: str) -> GatewayEmbedder:
        """Ask once to learn the model's dimensions (and that the gateway serves it)."""
        vector = await client.embeddings(model, ["dimension probe"])
        return cls(client, model, int(vector.shape[1]))

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        parts = [await self._client.embeddings(self.name, list(texts[i:i + BATCH]))
                 for i in range(0, len(texts), BATCH)]
        if not parts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return unit_rows(np.concatenate(parts))
