"""RAG collections over a real store: names unique per tenant, documents replaced or skipped by
content, deleted, queried with filters and a score threshold, ingestion progress, and an index
cache that follows changes another replica made."""

from __future__ import annotations

import pytest

from switchboard_common.errors import Conflict, InvalidRequest, NotFound

from switchboard_memory.collections import Collections
from switchboard_memory.domain import DocumentInput
from switchboard_memory.index_cache import IndexCache

DOCS = [DocumentInput("refunds", "Refunds are paid within 14 days of a return.", {"team": "cs"}),
        DocumentInput("vacation", "Employees get 25 vacation days a year.", {"team": "hr"}),
        DocumentInput("parental", "Parental leave is 16 weeks at full pay.", {"team": "hr"})]


@pytest.fixture
async def docs(memory, tenant):
    await memory.collections.create(memory.caller(tenant), "docs", "", None, None)
    job = await memory.collections.add_documents(tenant, "docs", DOCS)
    assert (job.state, job.documents_done, job.chunks_added) == ("succeeded", 3, 3)
    return memory


async def test_names_are_unique_per_tenant_and_checked(memory, tenant):
    caller = memory.caller(tenant)
    created = await memory.collections.create(caller, "docs", "", 128, 16)
    assert (created.embedding_model, created.dimensions, created.chunk_tokens) == (
        "paraphrase-MiniLM-L3-v2", 384, 128)
    with pytest.raises(Conflict):
        await memory.collections.create(caller, "docs", "", None, None)
    await memory.collections.create(memory.caller(tenant + "-b"), "docs", "", None, None)
    for bad in ("", "has space", "x" * 129):
        with pytest.raises(InvalidRequest):
            await memory.collections.create(caller, bad, "", None, None)
    with pytest.raises(InvalidRequest):
        await memory.collections.create(caller, "ok", "", 64, 64)
    with pytest.raises(InvalidRequest) as err:  # no gateway configured for a served model
        await memory.collections.create(caller, "ok", "text-embedding-3-small", None, None)
    assert err.value.param == "embedding_model"


async def test_a_query_finds_the_document_filters_and_thresholds(docs, tenant):
    hits = await docs.collections.query(tenant, "docs", "how long is parental leave", 2)
    assert hits[0].chunk_id == "parental#0" and hits[0].metadata == {"team": "hr"}
    assert hits[0].score >= hits[1].score
    only_cs = await docs.collections.query(tenant, "docs", "leave", 3, {"team": "cs"})
    assert [h.document_id for h in only_cs] == ["refunds"]
    either = await docs.collections.query(tenant, "docs", "leave", 3, {"team": ["cs", "hr"]})
    assert len(either) == 3
    strict = await docs.collections.query(tenant, "docs", "parental leave weeks", 3,
                                          min_score=hits[0].score - 1e-6)
    assert [h.document_id for h in strict] == ["parental"]
    with pytest.raises(InvalidRequest):
        await docs.collections.query(tenant, "docs", "x", 3, {"team": 5})
    with pytest.raises(InvalidRequest):
        await docs.collections.query(tenant, "docs", "x", 1000)


async def test_documents_are_replaced_skipped_and_deleted(docs, tenant):
    job = await docs.collections.add_documents(tenant, "docs", [
        DOCS[0], DocumentInput("vacation", "Employees get 30 vacation days a year.", {})])
    assert (job.documents_skipped, job.chunks_added) == (1, 1)
    collection = await docs.collections.get(tenant, "docs")
    assert (collection.documents, collection.chunks) == (3, 3)
    (hit,) = await docs.collections.query(tenant, "docs", "vacation days", 1)
    assert "30 vacation days" in hit.text and hit.metadata == {}
    assert await docs.collections.delete_document(tenant, "docs", "vacation") == 1
    hits = await docs.collections.query(tenant, "docs", "vacation days", 3)
    assert "vacation" not in {h.document_id for h in hits}
    with pytest.raises(NotFound):
        await docs.collections.delete_document(tenant, "docs", "vacation")
    listed, _ = await docs.collections.documents(tenant, "docs", None, 10)
    assert {d.id for d in listed} == {"refunds", "parental"}


async def test_another_replica_sees_the_changes_on_its_next_query(docs, tenant):
    other = Collections(docs.collection_repo, docs.collections._embedders,
                        IndexCache(docs.collection_repo, 100_000), docs.ingestor, docs.settings)
    assert len(await other.query(tenant, "docs", "leave", 10)) == 3
    await docs.collections.add_documents(tenant, "docs", [
        DocumentInput("bikes", "Bike racks are behind building B.", {})])
    await docs.collections.delete_document(tenant, "docs", "refunds")
    found = {h.document_id for h in await other.query(tenant, "docs", "bike racks", 10)}
    assert found == {"bikes", "vacation", "parental"}


async def test_a_batch_that_outlasts_the_wait_reports_progress(memory, tenant, eventually):
    settings = memory.settings.model_copy(update={"ingest_wait_seconds": 0.0,
                                                  "ingest_batch_documents": 5})
    collections = Collections(memory.collection_repo, memory.collections._embedders,
                              IndexCache(memory.collection_repo, 100_000), memory.ingestor,
                              settings)
    await collections.create(memory.caller(tenant), "bulk", "", None, None)
    batch = [DocumentInput(f"d{i}", f"Document {i} is about topic {i}.", {}) for i in range(40)]
    job = await collections.add_documents(tenant, "bulk", batch)
    assert job.state == "running" and job.documents_total == 40

    async def done():
        seen = await collections.ingestion(tenant, "bulk", job.ingestion_id)
        return seen if seen.state == "succeeded" else None

    final = await eventually(done, timeout=60)
    assert (final.documents_done, final.chunks_added) == (40, 40)
    with pytest.raises(NotFound):
        await collections.ingestion(tenant + "-other", "bulk", job.ingestion_id)


async def test_bad_documents_are_refused_before_anything_is_stored(docs, tenant):
    for batch in ([], [DocumentInput("", "x")], [DocumentInput("a", " ")],
                  [DocumentInput("a", "x"), DocumentInput("a", "y")]):
        with pytest.raises(InvalidRequest):
            await docs.collections.add_documents(tenant, "docs", batch)
    assert (await docs.collections.get(tenant, "docs")).documents == 3


async def test_deleting_a_collection_deletes_its_documents(docs, tenant):
    assert await docs.collections.delete(tenant, "docs") == (3, 3)
    with pytest.raises(NotFound):
        await docs.collections.query(tenant, "docs", "leave", 3)
