"""MemoryService through a real gRPC server, asking a fake AuthService on a real gRPC port: who
may act on which tenant, the strict JSON twins, and the router's BuildContext and AppendTurn."""

from __future__ import annotations

import secrets

import grpc
import pytest
from google.protobuf import struct_pb2
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc

from switchboard_common import grpc_server
from switchboard_common.errors import Unauthenticated

from switchboard_memory import bootstrap, server
from switchboard_memory.settings import MemorySettings

ADMIN, KEY_A, KEY_B = (f"sk-{n}-" + secrets.token_hex(8) for n in ("admin", "a", "b"))


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    async def Authorize(self, request, context):
        if request.key == ADMIN:
            return auth_pb2.AuthorizeResponse(key_id="master", tenant_id="default", is_admin=True,
                                              cache_ttl_seconds=60)
        if request.key in (KEY_A, KEY_B):
            suffix = "a" if request.key == KEY_A else "b"
            return auth_pb2.AuthorizeResponse(key_id=f"key_{suffix}",
                                              tenant_id=f"{self.tenant}-{suffix}",
                                              cache_ttl_seconds=60)
        raise Unauthenticated("Incorrect API key provided.", code="invalid_api_key")


def bearer(key: str):
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def stub(tmp_path, database_url, tenant):
    auth_server, _ = grpc_server.build(["switchboard.auth.v1.AuthService"])
    auth_pb2_grpc.add_AuthServiceServicer_to_server(FakeAuth(tenant), auth_server)
    auth_port = auth_server.add_insecure_port("127.0.0.1:0")
    await auth_server.start()
    settings = MemorySettings(data_dir=tmp_path, database_url=database_url,
                              auth_target=f"127.0.0.1:{auth_port}")
    app = await bootstrap.build(settings, sweep=False)
    memory_server, _ = server.create(app)
    port = memory_server.add_insecure_port("127.0.0.1:0")
    await memory_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield memory_pb2_grpc.MemoryServiceStub(channel)
    await channel.close()
    await memory_server.stop(None)
    await app.close()
    await auth_server.stop(None)


def trailers(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    return dict(exc.trailing_metadata() or ())


async def expect(call, status: str, **meta):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    md = trailers(err.value)
    assert md["x-http-status"] == status, (md, err.value.details())
    for key, value in meta.items():
        assert md[f"x-error-{key}"] == value, md
    return err.value


async def test_a_key_manages_its_own_tenant_and_only_an_admin_names_another(stub, tenant):
    created = await stub.CreateCollection(memory_pb2.CreateCollectionRequest(name="docs"),
                                          metadata=bearer(KEY_A))
    assert (created.tenant_id, created.key_id) == (f"{tenant}-a", "key_a")
    # Key B's tenant has no such collection; naming tenant A is refused.
    await expect(stub.GetCollection(memory_pb2.GetCollectionRequest(collection="docs"),
                                    metadata=bearer(KEY_B)), "404", code="collection_not_found")
    await expect(stub.GetCollection(memory_pb2.GetCollectionRequest(
        collection="docs", tenant_id=f"{tenant}-a"), metadata=bearer(KEY_B)), "403",
        param="tenant_id")
    seen = await stub.GetCollection(memory_pb2.GetCollectionRequest(
        collection="docs", tenant_id=f"{tenant}-a"), metadata=bearer(ADMIN))
    assert seen.name == "docs"
    await expect(stub.ListCollections(memory_pb2.ListCollectionsRequest(),
                                      metadata=bearer("sk-nope")), "401")
    await expect(stub.ListSessions(memory_pb2.ListSessionsRequest()), "401",
                 code="missing_api_key")


async def test_the_json_twins_read_bodies_strictly(stub):
    def body(data: bytes):
        from google.api import httpbody_pb2
        return httpbody_pb2.HttpBody(content_type="application/json", data=data)

    await expect(stub.CreateCollectionJson(memory_pb2.CreateCollectionJsonRequest(
        body=body(b'{"name": "docs", "surprise": 1}')), metadata=bearer(KEY_A)), "400",
        param="surprise", code="unknown_parameter")
    made = await stub.CreateCollectionJson(memory_pb2.CreateCollectionJsonRequest(
        body=body(b'{"name": "docs"}')), metadata=bearer(KEY_A))
    assert made.name == "docs"
    added = await stub.AddDocumentsJson(memory_pb2.AddDocumentsJsonRequest(
        collection="docs", body=body(b'{"documents": [{"id": "a", "text": "Refunds take 14 days.",'
                                     b' "metadata": {"team": "cs"}}]}')), metadata=bearer(KEY_A))
    assert added.ingestion.state == memory_pb2.INGESTION_STATE_SUCCEEDED
    assert added.chunks_added == 1
    await expect(stub.QueryCollectionJson(memory_pb2.QueryCollectionJsonRequest(
        collection="docs", body=body(b'{"query": "refund", "collection": "x"}')),
        metadata=bearer(KEY_A)), "400", param="collection")
    found = await stub.QueryCollectionJson(memory_pb2.QueryCollectionJsonRequest(
        collection="docs", body=body(b'{"query": "refund", "top_k": 3, '
                                     b'"filter": {"team": "cs"}, "min_score": 0.1}')),
        metadata=bearer(KEY_A))
    assert [c.chunk_id for c in found.chunks] == ["a#0"]


async def test_append_turn_and_build_context_for_the_router(stub, tenant):
    def messages(*items):
        out = struct_pb2.ListValue()
        out.extend(list(items))
        return out

    answer = struct_pb2.Struct()
    answer.update({"role": "assistant", "content": "Hello Alice."})
    request = memory_pb2.AppendTurnRequest(
        tenant_id=tenant, key_id="key_a", session_id="alice", turn_id="ev-1",
        messages=messages({"role": "user", "content": "My name is Alice"}), answer=answer,
        outcome=memory_pb2.TURN_OUTCOME_COMPLETE, model="gpt-4o")
    first = await stub.AppendTurn(request)
    again = await stub.AppendTurn(request)
    assert (first.stored_messages, first.turns, first.already_stored) == (2, 1, False)
    assert (again.stored_messages, again.turns, again.already_stored) == (0, 1, True)
    built = await stub.BuildContext(memory_pb2.BuildContextRequest(
        tenant_id=tenant, key_id="key_a", session_id="alice", model="gpt-4o",
        messages=messages({"role": "user", "content": "What is my name?"})))
    assert [m["content"] for m in built.messages] == [
        "My name is Alice", "Hello Alice.", "What is my name?"]
    assert (built.history_turns, built.history_messages) == (1, 2)
    other = await stub.BuildContext(memory_pb2.BuildContextRequest(
        tenant_id=tenant + "-x", session_id="alice",
        messages=messages({"role": "user", "content": "What is my name?"})))
    assert [m["content"] for m in other.messages] == ["What is my name?"]
    await expect(stub.BuildContext(memory_pb2.BuildContextRequest(
        session_id="alice", messages=messages({"role": "user", "content": "x"}))), "400",
        param="tenant_id")
