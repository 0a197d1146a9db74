"""Collections' hybrid indexes kept in memory, in step with the database.

Each query reads the collection's revision (one indexed SELECT); when it moved, the cache reads
the chunk ids, drops the deleted ones and loads only the added ones, so a replica that did not
make a change sees it on its next query, and one that ingested a batch does not reload the rest.
Loading and analysis run in a worker thread under the collection's lock, and searches take the
same lock, so an index is never read while it changes. Least recently used collections are
evicted past `max_chunks` in all.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from switchboard_memory.collection_repository import CollectionRepository
from switchboard_memory.domain import ChunkRecord, Collection
from switchboard_memory.retrieval.index import HybridIndex


@dataclass
class CachedIndex:
    revision: int
    index: HybridIndex
    chunks: dict[int, ChunkRecord] = field(default_factory=dict)  # by row id
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # by document id
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class IndexCache:
    def __init__(self, repo: CollectionRepository, max_chunks: int) -> None:
        self._repo = repo
        self._max_chunks = max_chunks
        self._entries: OrderedDict[str, CachedIndex] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, collection: Collection) -> CachedIndex:
        """The collection's index as of now; hold `entry.lock` while searching it."""
        key = collection.collection_id
        revision = await self._repo.revision(key)
        entry = self._entries.get(key)
        if entry is None or entry.revision != revision:
            async with self._locks.setdefault(key, asyncio.Lock()):
                entry = self._entries.get(key)
                if entry is None or entry.revision != revision:
                    entry = await self._refresh(collection, entry)
        self._entries.move_to_end(key)
        self._evict()
        return entry

    def forget(self, collection_id: str) -> None:
        self._entries.pop(collection_id, None)
        self._locks.pop(collection_id, None)

    async def _refresh(self, collection: Collection, entry: CachedIndex | None) -> CachedIndex:
        revision, ids = await self._repo.index_state(collection.collection_id)
        if entry is None or entry.index.rows() > 2 * max(len(ids), 1000):
            # New, or mostly dead rows after heavy churn: build afresh.
            entry = CachedIndex(revision=-1, index=HybridIndex(collection.dimensions))
        async with entry.lock:
            present: set[int] = set(ids)
            gone = [k for k in entry.chunks if k not in present]
            added = sorted(present - entry.chunks.keys())
            records = await self._repo.chunk_records(added, collection.dimensions)
            metadata = await self._repo.metadata(
                collection.collection_id, sorted({r.document_id for r in records}
                                                 | set(entry.metadata)))
            await asyncio.to_thread(_apply, entry, gone, records)
            entry.metadata = metadata
            entry.revision = revision
        self._entries[collection.collection_id] = entry
        return entry

    def _evict(self) -> None:
        total = sum(len(e.chunks) for e in self._entries.values())
        while total > self._max_chunks and len(self._entries) > 1:
            _, oldest = self._entries.popitem(last=False)
            total -= len(oldest.chunks)


def _apply(entry: CachedIndex, gone: list[int], records: list[ChunkRecord]) -> None:
    entry.index.remove(gone)
    for key in gone:
        entry.chunks.pop(key, None)
    if records:
        entry.index.add([r.row_id for r in records], [r.text for r in records],
                        np.stack([r.vector for r in records]))
        entry.chunks.update((r.row_id, r) for r in records)
