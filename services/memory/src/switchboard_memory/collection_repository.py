"""Storage of collections, documents, chunks and ingestions (SQLite or PostgreSQL). Every change
of a collection's chunks bumps its revision in the same transaction, which index caches compare."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_common.errors import Conflict
from switchboard_common.pagination import Cursor

from switchboard_memory.domain import ChunkRecord, Collection, DocumentInfo, Ingestion
from switchboard_memory.tables import chunks, collections, documents, ingestions


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready to store: its chunks cut, counted and embedded."""

    document_id: str
    metadata: dict[str, str]
    content_sha256: str
    texts: list[str]
    tokens: list[int]
    vectors: np.ndarray  # (len(texts), dimensions) float32


class CollectionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, collection: Collection) -> None:
        row = {f: getattr(collection, f) for f in (
            "collection_id", "tenant_id", "name", "key_id", "embedding_model", "dimensions",
            "chunk_tokens", "chunk_overlap_tokens", "documents", "chunks", "revision",
            "created_at", "updated_at")}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(collections.insert().values(**row))
        except IntegrityError:
            raise Conflict(f"A collection named '{collection.name}' exists already.",
                           param="name", code="collection_exists") from None

    async def get(self, tenant_id: str, name: str) -> Collection | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(collections).where(
                collections.c.tenant_id == tenant_id, collections.c.name == name))).first()
        return Collection(**row._mapping) if row is not None else None

    async def revision(self, collection_id: str) -> int | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(collections.c.revision).where(
                collections.c.collection_id == collection_id))).scalar_one_or_none()

    async def page(self, tenant_id: str, after: Cursor | None, limit: int) -> list[Collection]:
        """By creation, oldest first, keyset-paginated on (created_at, name); limit + 1 rows
        tell whether another page exists."""
        query = (select(collections).where(collections.c.tenant_id == tenant_id)
                 .order_by(collections.c.created_at, collections.c.name).limit(limit))
        if after is not None:
            at, name = after
            query = query.where(or_(collections.c.created_at > at, and_(
                collections.c.created_at == at, collections.c.name > name)))
        async with self._engine.connect() as conn:
            return [Collection(**r._mapping) for r in (await conn.execute(query)).all()]

    async def delete(self, collection_id: str) -> tuple[int, int]:
        """(documents, chunks) deleted with the collection."""
        async with self._engine.begin() as conn:
            docs = await conn.execute(delete(documents).where(
                documents.c.collection_id == collection_id))
            gone = await conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            await conn.execute(delete(ingestions).where(
                ingestions.c.collection_id == collection_id))
            await conn.execute(delete(collections).where(
                collections.c.collection_id == collection_id))
            return docs.rowcount, gone.rowcount

    async def document_hashes(self, collection_id: str, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(ids), 500):  # bound the IN list
                rows = await conn.execute(select(documents.c.document_id,
                                                 documents.c.content_sha256).where(
                    documents.c.collection_id == collection_id,
                    documents.c.document_id.in_(ids[start:start + 500])))
                out.update({r.document_id: r.content_sha256 for r in rows})
        return out

    async def replace_documents(self, collection_id: str, prepared: Sequence[PreparedDocument],
                                now: datetime) -> int:
        """Store the documents (replacing any with the same ids) and their chunks in one
        transaction; returns the chunks added."""
        ids = [d.document_id for d in prepared]
        async with self._engine.begin() as conn:
            created = {r.document_id: r.created_at for r in await conn.execute(
                select(documents.c.document_id, documents.c.created_at).where(
                    documents.c.collection_id == collection_id, documents.c.document_id.in_(ids)))}
            await conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id,
                                                    chunks.c.document_id.in_(ids)))
            await conn.execute(delete(documents).where(documents.c.collection_id == collection_id,
                                                       documents.c.document_id.in_(ids)))
            await conn.execute(documents.insert(), [{
                "collection_id": collection_id, "document_id": d.document_id,
                "metadata": orjson.dumps(d.metadata).decode(),
                "content_sha256": d.content_sha256, "chunks": len(d.texts),
                "tokens": sum(d.tokens), "created_at": created.get(d.document_id, now),
                "updated_at": now} for d in prepared])
            rows = [{"collection_id": collection_id, "document_id": d.document_id,
                     "chunk_index": i, "text": text, "tokens": d.tokens[i],
                     "vector": np.ascontiguousarray(d.vectors[i], dtype=np.float32).tobytes()}
                    for d in prepared for i, text in enumerate(d.texts)]
            if rows:
                await conn.execute(chunks.insert(), rows)
            await _recount(conn, collection_id, now)
            return len(rows)

    async def delete_document(self, collection_id: str, document_id: str,
                              now: datetime) -> int | None:
        """Chunks deleted with the document; None when there was no such document."""
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(documents).where(
                documents.c.collection_id == collection_id,
                documents.c.document_id == document_id))
            if gone.rowcount == 0:
                return None
            deleted = await conn.execute(delete(chunks).where(
                chunks.c.collection_id == collection_id, chunks.c.document_id == document_id))
            await _recount(conn, collection_id, now)
            return deleted.rowcount

    async def list_documents(self, collection_id: str, before: Cursor | None,
                             limit: int) -> list[DocumentInfo]:
        """Most recently updated first, keyset-paginated on (updated_at, document_id)."""
        query = (select(documents).where(documents.c.collection_id == collection_id)
                 .order_by(documents.c.updated_at.desc(), documents.c.document_id.desc())
                 .limit(limit))
        if before is not None:
            at, last = before
            query = query.where(or_(documents.c.updated_at < at, and_(
                documents.c.updated_at == at, documents.c.document_id < last)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [DocumentInfo(id=r.document_id, metadata=orjson.loads(r.metadata), chunks=r.chunks,
                             tokens=r.tokens, created_at=r.created_at, updated_at=r.updated_at)
                for r in rows]

    async def index_state(self, collection_id: str) -> tuple[int, list[int]]:
        """The revision and every chunk's row id, read together."""
        async with self._engine.connect() as conn:
            revision = (await conn.execute(select(collections.c.revision).where(
                collections.c.collection_id == collection_id))).scalar_one_or_none()
            ids = (await conn.execute(select(chunks.c.row_id).where(
                chunks.c.collection_id == collection_id))).scalars().all()
        return (revision if revision is not None else -1), list(ids)

    async def chunk_records(self, row_ids: Sequence[int], dimensions: int) -> list[ChunkRecord]:
        out: list[ChunkRecord] = []
        async with self._engine.connect() as conn:
            for start in range(0, len(row_ids), 1000):
                rows = await conn.execute(select(
                    chunks.c.row_id, chunks.c.document_id, chunks.c.chunk_index, chunks.c.text,
                    chunks.c.vector).where(chunks.c.row_id.in_(row_ids[start:start + 1000])))
                out.extend(ChunkRecord(row_id=r.row_id, document_id=r.document_id,
                                       chunk_index=r.chunk_index, text=r.text,
                                       vector=np.frombuffer(r.vector, dtype=np.float32))
                           for r in rows)
        return out

    async def metadata(self, collection_id: str,
                       document_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(document_ids), 500):
                rows = await conn.execute(select(documents.c.document_id, documents.c.metadata)
                                          .where(documents.c.collection_id == collection_id,
                                                 documents.c.document_id.in_(
                                                     document_ids[start:start + 500])))
                out.update({r.document_id: orjson.loads(r.metadata) for r in rows})
        return out

    # Ingestions: progress a client can poll, from any replica.

    async def save_ingestion(self, collection_id: str, tenant_id: str, job: Ingestion) -> None:
        values = {"state": job.state, "documents_total": job.documents_total,
                  "documents_done": job.documents_done,
                  "documents_skipped": job.documents_skipped, "chunks_added": job.chunks_added,
                  "error": job.error, "updated_at": job.updated_at}
        async with self._engine.begin() as conn:
            result = await conn.execute(update(ingestions).where(
                ingestions.c.ingestion_id == job.ingestion_id).values(**values))
            if result.rowcount == 0:
                await conn.execute(ingestions.insert().values(
                    ingestion_id=job.ingestion_id, collection_id=collection_id,
                    tenant_id=tenant_id, created_at=job.created_at, **values))

    async def get_ingestion(self, collection_id: str, ingestion_id: str,
                            name: str) -> Ingestion | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(ingestions).where(
                ingestions.c.collection_id == collection_id,
                ingestions.c.ingestion_id == ingestion_id))).first()
        if row is None:
            return None
        return Ingestion(ingestion_id=row.ingestion_id, collection=name, state=row.state,
                         documents_total=row.documents_total, documents_done=row.documents_done,
                         documents_skipped=row.documents_skipped, chunks_added=row.chunks_added,
                         error=row.error, created_at=row.created_at, updated_at=row.updated_at)


async def _recount(conn: AsyncConnection, collection_id: str, now: datetime) -> None:
    n_docs = select(func.count()).select_from(documents).where(
        documents.c.collection_id == collection_id).scalar_subquery()
    n_chunks = select(func.count()).select_from(chunks).where(
        chunks.c.collection_id == collection_id).scalar_subquery()
    await conn.execute(update(collections).where(collections.c.collection_id == collection_id)
                       .values(documents=n_docs, chunks=n_chunks, updated_at=now,
                               revision=collections.c.revision + 1))
