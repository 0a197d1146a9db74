"""RAG collections: create, list, delete; add and delete documents; query them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from switchboard_common.errors import InvalidRequest, NotFound
from switchboard_common.pagination import Cursor

from switchboard_memory.collection_repository import CollectionRepository
from switchboard_memory.domain import (Caller, Collection, DocumentInfo, DocumentInput, Hit,
                                       Ingestion, chunk_id, utc_now)
from switchboard_memory.embedders import Embedders
from switchboard_memory.index_cache import IndexCache
from switchboard_memory.ingestion import Ingestor
from switchboard_memory.settings import MemorySettings

NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
MAX_DOCUMENT_ID = 512
MAX_DOCUMENTS = 100_000  # in one call (the edge's 32 MiB body bound comes first in practice)
MAX_METADATA_ENTRIES = 64


class Collections:
    def __init__(self, repo: CollectionRepository, embedders: Embedders, cache: IndexCache,
                 ingestor: Ingestor, settings: MemorySettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._embedders = embedders
        self._cache = cache
        self._ingestor = ingestor
        self._settings = settings
        self._clock = clock

    async def create(self, caller: Caller, name: str, embedding_model: str,
                     chunk_tokens: int | None, overlap_tokens: int | None) -> Collection:
        if not NAME.fullmatch(name):
            raise InvalidRequest("A collection name is 1 to 128 letters, digits, '_', '-' or "
                                 f"'.'; got '{name}'.", param="name", code="invalid_value")
        size = self._settings.chunk_tokens if chunk_tokens is None else chunk_tokens
        overlap = (self._settings.chunk_overlap_tokens if overlap_tokens is None
                   else overlap_tokens)
        if not 16 <= size <= 8192:
            raise InvalidRequest(f"chunk_tokens must be 16..8192, not {size}.",
                                 param="chunk_tokens", code="invalid_value")
        if not 0 <= overlap < size:
            raise InvalidRequest(f"chunk_overlap_tokens must be 0..{size - 1} (below "
                                 f"chunk_tokens), not {overlap}.", param="chunk_overlap_tokens",
                                 code="invalid_value")
        embedder = await self._embedders.get(embedding_model
                                             or self._settings.default_embedding_model)
        now = self._clock()
        collection = Collection(
            collection_id=str(uuid.uuid4()), tenant_id=caller.tenant_id, name=name,
            embedding_model=embedder.name, dimensions=embedder.dimensions, chunk_tokens=size,
            chunk_overlap_tokens=overlap, key_id=caller.key_id, created_at=now, updated_at=now)
        await self._repo.create(collection)
        return collection

    async def get(self, tenant_id: str, name: str) -> Collection:
        collection = await self._repo.get(tenant_id, name) if name else None
        if collection is None:
            raise NotFound(f"No collection '{name}'.", param="collection",
                           code="collection_not_found")
        return collection

    async def page(self, tenant_id: str, after: Cursor | None,
                   page_size: int) -> tuple[list[Collection], Cursor | None]:
        rows = await self._repo.page(tenant_id, after, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return page, ((page[-1].created_at, page[-1].name) if more else None)

    async def delete(self, tenant_id: str, name: str) -> tuple[int, int]:
        collection = await self.get(tenant_id, name)
        counts = await self._repo.delete(collection.collection_id)
        self._cache.forget(collection.collection_id)
        return counts

    async def add_documents(self, tenant_id: str, name: str,
                            docs: Sequence[DocumentInput]) -> Ingestion:
        collection = await self.get(tenant_id, name)
        _check_documents(docs)
        return await self._ingestor.start(collection, docs, self._settings.ingest_wait_seconds)

    async def ingestion(self, tenant_id: str, name: str, ingestion_id: str) -> Ingestion:
        collection = await self.get(tenant_id, name)
        job = await self._ingestor.get(collection, ingestion_id)
        if job is None:
            raise NotFound(f"No ingestion '{ingestion_id}' in collection '{name}'.",
                           param="ingestion_id", code="ingestion_not_found")
        return job

    async def documents(self, tenant_id: str, name: str, before: Cursor | None,
                        page_size: int) -> tuple[list[DocumentInfo], Cursor | None]:
        collection = await self.get(tenant_id, name)
        rows = await self._repo.list_documents(collection.collection_id, before, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return page, ((page[-1].updated_at, page[-1].id) if more else None)

    async def delete_document(self, tenant_id: str, name: str, document_id: str) -> int:
        collection = await self.get(tenant_id, name)
        deleted = await self._repo.delete_document(collection.collection_id, document_id,
                                                   self._clock())
        if deleted is None:
            raise NotFound(f"No document '{document_id}' in collection '{name}'.",
                           param="document_id", code="document_not_found")
        return deleted

    async def query(self, tenant_id: str, name: str, query: str, top_k: int,
                    filter_: dict[str, Any] | None = None, min_score: float | None = None,
                    exclude: Sequence[str] = ()) -> list[Hit]:
        if not query.strip():
            raise InvalidRequest("'query' must not be empty.", param="query",
                                 code="invalid_value")
        top_k = top_k or self._settings.rag_top_k
        if not 1 <= top_k <= self._settings.max_top_k:
            raise InvalidRequest(f"top_k must be 1..{self._settings.max_top_k}, not {top_k}.",
                                 param="top_k", code="invalid_value")
        wanted = _filter(filter_ or {})
        collection = await self.get(tenant_id, name)
        embedder = await self._embedders.get(collection.embedding_model)
        vector = (await embedder.embed([query]))[0]
        entry = await self._cache.get(collection)
        async with entry.lock:
            mask = _candidates(entry, wanted, set(exclude))
            found = entry.index.search(query, vector, top_k, mask)
            hits = []
            for scored in found:
                record = entry.chunks[int(scored.key)]  # type: ignore[call-overload]
                if min_score is not None and scored.score < min_score:
                    continue
                hits.append(Hit(chunk_id=chunk_id(record.document_id, record.chunk_index),
                                document_id=record.document_id, chunk_index=record.chunk_index,
                                text=record.text,
                                metadata=entry.metadata.get(record.document_id, {}),
                                score=scored.score, similarity=scored.similarity))
        return hits


def _check_documents(docs: Sequence[DocumentInput]) -> None:
    if not docs:
        raise InvalidRequest("'documents' must hold at least one document.", param="documents",
                             code="invalid_value")
    if len(docs) > MAX_DOCUMENTS:
        raise InvalidRequest(f"At most {MAX_DOCUMENTS} documents in one call.",
                             param="documents", code="invalid_value")
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        where = f"documents[{i}]"
        if not doc.id or len(doc.id) > MAX_DOCUMENT_ID:
            raise InvalidRequest(f"'{where}.id' must be 1 to {MAX_DOCUMENT_ID} characters.",
                                 param=f"{where}.id", code="invalid_value")
        if doc.id in seen:
            raise InvalidRequest(f"'{where}.id' repeats '{doc.id}' within the batch.",
                                 param=f"{where}.id", code="invalid_value")
        seen.add(doc.id)
        if not doc.text.strip():
            raise InvalidRequest(f"'{where}.text' must not be empty.", param=f"{where}.text",
                                 code="invalid_value")
        if len(doc.metadata) > MAX_METADATA_ENTRIES:
            raise InvalidRequest(f"'{where}.metadata' holds at most {MAX_METADATA_ENTRIES} "
                                 "entries.", param=f"{where}.metadata", code="invalid_value")


def _filter(raw: dict[str, Any]) -> dict[str, set[str]]:
    """{"k": "v"} or {"k": ["v", "w"]}: each key must match one of its values."""
    out: dict[str, set[str]] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key] = {value}
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = set(value)
        else:
            raise InvalidRequest(f"'filter.{key}' must be a string or a non-empty array of "
                                 "strings (metadata values are strings).",
                                 param=f"filter.{key}", code="invalid_value")
    return out


def _candidates(entry, wanted: dict[str, set[str]], exclude: set[str]) -> np.ndarray | None:
    if not wanted and not exclude:
        return None
    mask = np.zeros(entry.index.rows(), dtype=bool)
    for row_id, record in entry.chunks.items():
        if exclude and chunk_id(record.document_id, record.chunk_index) in exclude:
            continue
        metadata = entry.metadata.get(record.document_id, {})
        if all(metadata.get(k) in values for k, values in wanted.items()):
            mask[entry.index.row_of(row_id)] = True
    return mask
