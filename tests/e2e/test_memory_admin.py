"""Memory's admin API through the real edge: collections, documents, queries, ingestions and
sessions, OpenAI-shaped errors, and tenants that never see each other's memory."""

from __future__ import annotations

import secrets

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc

from tests.e2e.test_http_edge import assert_openai_error

GUIDE = """# Handbook

## Leave

Parental leave is 16 weeks at full pay. Ask HR two months ahead.

## Expenses

Expenses are refunded within 14 days of a receipt.
"""


def call(stack, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    return httpx.request(method, stack.edge_url + path, timeout=30,
                         headers={"authorization": f"Bearer {key or stack.master_key}"}, **kw)


def tenant_key(stack) -> tuple[str, str]:
    """A new tenant and a key of it: (tenant_id, secret)."""
    tenant = call(stack, "POST", "/api/tenants", json={"name": "t-" + secrets.token_hex(4)})
    assert tenant.status_code == 200, tenant.text
    tenant_id = tenant.json()["tenant_id"]
    key = call(stack, "POST", "/api/keys", json={"name": "memory", "tenant_id": tenant_id})
    assert key.status_code == 200, key.text
    return tenant_id, key.json()["secret"]


@pytest.fixture(scope="module")
def tenants(stack):
    return tenant_key(stack), tenant_key(stack)


def test_a_collection_from_creation_to_deletion(stack, tenants):
    (tenant, key), _ = tenants
    made = call(stack, "POST", "/api/memory/collections", key,
                json={"name": "handbook", "chunk_tokens": 64, "chunk_overlap_tokens": 8})
    assert made.status_code == 200, made.text
    body = made.json()
    assert (body["name"], body["tenant_id"], body["embedding_model"], body["chunk_tokens"]) == (
        "handbook", tenant, "paraphrase-MiniLM-L3-v2", 64)
    assert_openai_error(call(stack, "POST", "/api/memory/collections", key,
                             json={"name": "handbook"}), 409, code="collection_exists")
    added = call(stack, "POST", "/api/memory/collections/handbook/documents", key, json={
        "documents": [{"id": "guide", "text": GUIDE, "metadata": {"team": "hr"}},
                      {"id": "it", "text": "Laptops are replaced every three years.",
                       "metadata": {"team": "it"}}]})
    assert added.status_code == 200, added.text
    ingestion = added.json()["ingestion"]
    assert ingestion["state"] == "INGESTION_STATE_SUCCEEDED", ingestion
    assert int(ingestion["documents_done"]) == 2 and int(added.json()["chunks_added"]) == 3
    polled = call(stack, "GET", f"/api/memory/collections/handbook/ingestions/"
                                f"{ingestion['ingestion_id']}", key)
    assert polled.json()["state"] == "INGESTION_STATE_SUCCEEDED"

    found = call(stack, "POST", "/api/memory/collections/handbook/query", key, json={
        "query": "How long is parental leave?", "top_k": 2, "filter": {"team": "hr"}})
    assert found.status_code == 200, found.text
    chunks = found.json()["chunks"]
    assert chunks[0]["chunk_id"] == "guide#0" and "16 weeks" in chunks[0]["text"]
    assert chunks[0]["text"].startswith("Handbook > Leave")
    assert {c["document_id"] for c in chunks} == {"guide"}
    high = call(stack, "POST", "/api/memory/collections/handbook/query", key, json={
        "query": "parental leave", "min_score": 2.0})
    assert high.json().get("chunks", []) == []

    listed = call(stack, "GET", "/api/memory/collections/handbook/documents", key).json()
    assert {d["id"] for d in listed["documents"]} == {"guide", "it"}
    assert call(stack, "DELETE", "/api/memory/collections/handbook/documents/it",
                key).json()["chunks_deleted"] == 1
    assert_openai_error(call(stack, "DELETE", "/api/memory/collections/handbook/documents/it",
                             key), 404, code="document_not_found")
    got = call(stack, "GET", "/api/memory/collections/handbook", key).json()
    assert (int(got["documents"]), int(got["chunks"])) == (1, 2)
    names = [c["name"] for c in call(stack, "GET", "/api/memory/collections",
                                     key).json()["collections"]]
    assert names == ["handbook"]
    gone = call(stack, "DELETE", "/api/memory/collections/handbook", key).json()
    assert (int(gone["documents_deleted"]), int(gone["chunks_deleted"])) == (1, 2)
    assert_openai_error(call(stack, "GET", "/api/memory/collections/handbook", key), 404,
                        code="collection_not_found")


def test_another_tenant_sees_nothing_and_only_an_admin_names_a_tenant(stack, tenants):
    (tenant_a, key_a), (_, key_b) = tenants
    assert call(stack, "POST", "/api/memory/collections", key_a,
                json={"name": "private"}).status_code == 200
    assert_openai_error(call(stack, "GET", "/api/memory/collections/private", key_b), 404)
    assert_openai_error(call(stack, "POST", "/api/memory/collections/private/query", key_b,
                             json={"query": "x"}), 404)
    assert_openai_error(call(stack, "GET", "/api/memory/collections/private", key_b,
                             params={"tenant_id": tenant_a}), 403, param="tenant_id")
    as_admin = call(stack, "GET", "/api/memory/collections/private",
                    params={"tenant_id": tenant_a})
    assert as_admin.status_code == 200 and as_admin.json()["tenant_id"] == tenant_a
    assert_openai_error(call(stack, "GET", "/api/memory/collections", "sk-not-a-key"), 401)


@pytest.mark.parametrize("body, param, code", [
    ({"name": "bad name"}, "name", "invalid_value"),
    ({"name": 5}, "name", "invalid_type"),
    ({"name": "x", "chunk_tokens": 8}, "chunk_tokens", "invalid_value"),
    ({"name": "x", "embedding_model": "no-such-model"}, "embedding_model", None),
])
def test_bad_collection_bodies_are_400s_naming_the_field(stack, tenants, body, param, code):
    (_, key), _ = tenants
    assert_openai_error(call(stack, "POST", "/api/memory/collections", key, json=body), 400,
                        param=param, code=code)


def _append(stack, tenant: str, session: str, turn_id: str, text: str, answer: str) -> None:
    """What the router does after an answer (called on memory's own port, as the router does)."""
    messages = struct_pb2.ListValue()
    messages.extend([{"role": "user", "content": text}])
    reply = struct_pb2.Struct()
    reply.update({"role": "assistant", "content": answer})
    with grpc.insecure_channel(stack.config.target("memory")) as channel:
        memory_pb2_grpc.MemoryServiceStub(channel).AppendTurn(memory_pb2.AppendTurnRequest(
            tenant_id=tenant, key_id="k", session_id=session, turn_id=turn_id,
            messages=messages, answer=reply), timeout=10)


def test_sessions_are_read_listed_and_deleted_per_tenant(stack, tenants):
    (tenant_a, key_a), (tenant_b, key_b) = tenants
    _append(stack, tenant_a, "user-alice-001", "ev-1", "My name is Alice", "Hi Alice!")
    _append(stack, tenant_a, "user-alice-001", "ev-1", "My name is Alice", "Hi Alice!")
    _append(stack, tenant_b, "user-alice-001", "ev-9", "I am Bob", "Hi Bob!")
    got = call(stack, "GET", "/api/memory/sessions/user-alice-001", key_a)
    assert got.status_code == 200, got.text
    session = got.json()
    assert session["messages"] == [{"role": "user", "content": "My name is Alice"},
                                   {"role": "assistant", "content": "Hi Alice!"}]
    assert session["turn_count"] == 1 and session["turns"][0]["turn_id"] == "ev-1"
    other = call(stack, "GET", "/api/memory/sessions/user-alice-001", key_b).json()
    assert other["messages"][0]["content"] == "I am Bob"
    listed = call(stack, "GET", "/api/memory/sessions", key_a).json()["sessions"]
    assert [s["session_id"] for s in listed] == ["user-alice-001"]
    assert "messages" not in listed[0]
    assert_openai_error(call(stack, "GET", "/api/memory/sessions/user-alice-001", key_a,
                             params={"session_id": "x"}), 400)
    assert call(stack, "DELETE", "/api/memory/sessions/user-alice-001",
                key_a).json()["turns_deleted"] == 1
    assert_openai_error(call(stack, "GET", "/api/memory/sessions/user-alice-001", key_a), 404,
                        code="session_not_found")
    assert call(stack, "GET", "/api/memory/sessions/user-alice-001", key_b).status_code == 200
