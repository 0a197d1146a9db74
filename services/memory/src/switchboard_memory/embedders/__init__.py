"""The embedders a collection can name: the one registry of them.

Local models run in this process (no network); any other name is a model the gateway serves,
reached through its /v1/embeddings when memory is given the gateway's URL and a key.
"""

from __future__ import annotations

from collections.abc import Callable

from switchboard_common.errors import InvalidRequest

from switchboard_memory.embedders import minilm
from switchboard_memory.embedders.base import Embedder
from switchboard_memory.embedders.gateway import GatewayEmbedder
from switchboard_memory.gateway_client import GatewayClient

LOCAL: dict[str, Callable[[int], Embedder]] = {
    minilm.NAME: lambda threads: minilm.MiniLMEmbedder(threads),
}


class Embedders:
    def __init__(self, gateway: GatewayClient | None, threads: int = 1) -> None:
        self._gateway = gateway
        self._threads = threads
        self._built: dict[str, Embedder] = {}

    def local(self, name: str) -> Embedder:
        embedder = self._built.get(name)
        if embedder is None:
            embedder = self._built[name] = LOCAL[name](self._threads)
        return embedder

    async def get(self, name: str) -> Embedder:
        """The embedder for a model name; a gateway model is probed once for its dimensions."""
        if name in LOCAL:
            return self.local(name)
        embedder = self._built.get(name)
        if embedder is None:
            if self._gateway is None:
                raise InvalidRequest(
                    f"Embedding model '{name}' would come from the gateway's /v1/embeddings, "
                    "but memory has no SWITCHBOARD_MEMORY_GATEWAY_URL (and _GATEWAY_KEY) to "
                    f"reach it. Built in: {', '.join(LOCAL)}.", param="embedding_model",
                    code="embedding_model_unavailable")
            embedder = self._built[name] = await GatewayEmbedder.probe(self._gateway, name)
        return embedder

    def close(self) -> None:
        for embedder in self._built.values():
            close = getattr(embedder, "close", None)
            if close is not None:
                close()
