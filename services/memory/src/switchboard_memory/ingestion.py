"""Documents into a collection in the background: chunked, embedded and stored batch by batch,
with progress any replica can read.

A batch is one transaction, so what is stored is whole documents; a document whose text and
metadata hash as stored is skipped, so posting a batch again after a failure redoes only what
is missing. The caller waits up to a bound; the job goes on after it. A job whose process
stopped shows as failed once its progress is older than STALLED_SECONDS.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import orjson
import structlog

from switchboard_memory import chunking
from switchboard_memory.collection_repository import CollectionRepository, PreparedDocument
from switchboard_memory.domain import Collection, DocumentInput, Ingestion, utc_now
from switchboard_memory.embedders import Embedders
from switchboard_memory.tokens import TokenCounter

_log = structlog.get_logger("ingestion")
STALLED_SECONDS = 300
STALLED = "the memory process running this ingestion stopped; post the documents again"


def content_hash(doc: DocumentInput) -> str:
    payload = orjson.dumps([doc.text, doc.metadata], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


class Ingestor:
    def __init__(self, repo: CollectionRepository, embedders: Embedders, tokens: TokenCounter,
                 *, batch_documents: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._embedders = embedders
        self._tokens = tokens
        self._batch = batch_documents
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()

    async def start(self, collection: Collection, docs: Sequence[DocumentInput],
                    wait_seconds: float) -> Ingestion:
        now = self._clock()
        job = Ingestion(ingestion_id=str(uuid.uuid4()), collection=collection.name,
                        state="running", documents_total=len(docs), created_at=now,
                        updated_at=now)
        await self._repo.save_ingestion(collection.collection_id, collection.tenant_id, job)
        progress = {"job": job}
        task = asyncio.create_task(self._run(collection, list(docs), progress))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=wait_seconds)
        except TimeoutError:
            pass
        return progress["job"]

    async def get(self, collection: Collection, ingestion_id: str) -> Ingestion | None:
        job = await self._repo.get_ingestion(collection.collection_id, ingestion_id,
                                             collection.name)
        if job is not None and job.state == "running" and (
                self._clock() - job.updated_at > timedelta(seconds=STALLED_SECONDS)):
            job = replace(job, state="failed", error=STALLED)
        return job

    async def _run(self, collection: Collection, docs: list[DocumentInput],
                   progress: dict[str, Ingestion]) -> None:
        job = progress["job"]
        try:
            embedder = await self._embedders.get(collection.embedding_model)
            for start in range(0, len(docs), self._batch):
                batch = docs[start:start + self._batch]
                added, skipped = await self._store(collection, embedder, batch)
                job = replace(job, documents_done=job.documents_done + len(batch),
                              documents_skipped=job.documents_skipped + skipped,
                              chunks_added=job.chunks_added + added, updated_at=self._clock())
                progress["job"] = job
                await self._repo.save_ingestion(collection.collection_id, collection.tenant_id,
                                                job)
            job = replace(job, state="succeeded", updated_at=self._clock())
        except asyncio.CancelledError:
            job = replace(job, state="failed", error="memory stopped during the ingestion; post "
                          "the documents again", updated_at=self._clock())
            raise
        except Exception as exc:  # noqa: BLE001 - any failure ends the job, saying why
            _log.warning("ingestion failed", ingestion_id=job.ingestion_id,
                         error=type(exc).__name__)
            job = replace(job, state="failed", error=getattr(exc, "message", None)
                          or f"{type(exc).__name__}: ingestion failed", updated_at=self._clock())
        finally:
            progress["job"] = job
            await asyncio.shield(self._repo.save_ingestion(
                collection.collection_id, collection.tenant_id, job))

    async def _store(self, collection: Collection, embedder, batch: list[DocumentInput]
                     ) -> tuple[int, int]:
        hashes = {d.id: content_hash(d) for d in batch}
        stored = await self._repo.document_hashes(collection.collection_id, list(hashes))
        todo = [d for d in batch if stored.get(d.id) != hashes[d.id]]
        if not todo:
            return 0, len(batch)
        enc = self._tokens.encoding()
        pieces = await asyncio.to_thread(lambda: [chunking.chunk(
            d.text, enc, collection.chunk_tokens, collection.chunk_overlap_tokens) for d in todo])
        vectors = await embedder.embed([p.text for doc in pieces for p in doc])
        prepared, offset = [], 0
        for doc, doc_pieces in zip(todo, pieces, strict=True):
            prepared.append(PreparedDocument(
                document_id=doc.id, metadata=doc.metadata, content_sha256=hashes[doc.id],
                texts=[p.text for p in doc_pieces], tokens=[p.tokens for p in doc_pieces],
                vectors=vectors[offset:offset + len(doc_pieces)]))
            offset += len(doc_pieces)
        added = await self._repo.replace_documents(collection.collection_id, prepared,
                                                   self._clock())
        return added, len(batch) - len(todo)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
