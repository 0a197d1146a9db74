"""StoredResponseService in a real `python -m switchboard_memory` process, on SQLite and
PostgreSQL: a response stored in progress then replaced as it ended, read back byte for byte, its
chain oldest first, tenants kept apart, deletion, bad input refused, the chain bound, and
retention deleting expired rows."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from switchboard.memory.v1 import stored_responses_pb2 as pb
from switchboard.memory.v1 import stored_responses_pb2_grpc as pb_grpc

from switchboard_common import db
from switchboard_common.testing.processes import ServiceProcess

from switchboard_memory.tables import responses

SERVICE = "switchboard.memory.v1.StoredResponseService"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def process(tmp_path, database_url, request):
    env = {"SWITCHBOARD_MEMORY_DATABASE_URL": database_url,
           "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.2",
           **getattr(request, "param", {})}
    memory = ServiceProcess("memory", SERVICE, tmp_path, env)
    try:
        memory.wait_serving(60)  # loading the embedder takes a while on a busy machine
        yield memory
    finally:
        memory.kill()


@pytest.fixture
async def stub(process):
    async with grpc.aio.insecure_channel(process.target) as channel:
        yield pb_grpc.StoredResponseServiceStub(channel)


def _created(seconds: int = 1_733_000_000) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime.fromtimestamp(seconds, UTC))
    return out


def _set(tenant: str, response_id: str, *, previous: str = "", text: str = "hi",
         status=pb.STORED_RESPONSE_STATUS_COMPLETED, output: str = "Echo: hi",
         key: str = "key_a") -> pb.SetStoredResponseRequest:
    response = {"id": response_id, "object": "response", "created_at": 1_733_000_000,
                "status": "completed", "output": [{"type": "message", "content": [
                    {"type": "output_text", "text": output}]}],
                "usage": {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}}
    return pb.SetStoredResponseRequest(
        tenant_id=tenant, key_id=key, response_id=response_id, previous_response_id=previous,
        model="gpt-4o-mini", status=status, created_at=_created(),
        input_items_json=orjson.dumps([{"role": "user", "content": text}]),
        response_json=orjson.dumps(response))


def _rid() -> str:
    return f"resp_{secrets.token_hex(16)}"


async def _code(call) -> tuple[grpc.StatusCode, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), dict(err.value.trailing_metadata() or ())


async def test_store_replace_read_chain_and_delete_per_tenant(stub):
    tenant, other = "t-" + secrets.token_hex(4), "t-" + secrets.token_hex(4)
    first, second, third = _rid(), _rid(), _rid()
    begun = await stub.SetStoredResponse(_set(tenant, first, status=pb.STORED_RESPONSE_STATUS_IN_PROGRESS))
    assert begun.created and begun.HasField("expires_at")
    ended = await stub.SetStoredResponse(_set(tenant, first, key="key_b"))
    assert not ended.created and ended.expires_at == begun.expires_at  # the expiry is set once
    got = await stub.GetStoredResponse(pb.GetStoredResponseRequest(tenant_id=tenant, response_id=first))
    assert got.status == pb.STORED_RESPONSE_STATUS_COMPLETED and got.key_id == "key_a"
    assert got.response_json == _set(tenant, first).response_json  # as sent, byte for byte
    assert orjson.loads(got.response_json)["created_at"] == 1_733_000_000
    assert got.created_at.seconds == 1_733_000_000 and got.model == "gpt-4o-mini"

    await stub.SetStoredResponse(_set(tenant, second, previous=first, text="and then?"))
    await stub.SetStoredResponse(_set(tenant, third, previous=second, text="last"))
    chain = await stub.GetStoredResponseChain(
        pb.GetStoredResponseChainRequest(tenant_id=tenant, response_id=third))
    assert [r.response_id for r in chain.responses] == [first, second, third]
    assert [orjson.loads(r.input_items_json)[0]["content"] for r in chain.responses] == [
        "hi", "and then?", "last"]

    # Another tenant finds nothing, cannot overwrite the id, and cannot delete it.
    for call in (stub.GetStoredResponse(pb.GetStoredResponseRequest(tenant_id=other, response_id=first)),
                 stub.GetStoredResponseChain(pb.GetStoredResponseChainRequest(tenant_id=other, response_id=third)),
                 stub.DeleteStoredResponse(pb.DeleteStoredResponseRequest(tenant_id=other, response_id=first)),
                 stub.SetStoredResponse(_set(other, first, output="hijacked"))):
        code, md = await _code(call)
        assert code == grpc.StatusCode.NOT_FOUND and md["x-error-code"] == "response_not_found"
    again = await stub.GetStoredResponse(pb.GetStoredResponseRequest(tenant_id=tenant, response_id=first))
    assert b"hijacked" not in again.response_json

    # A deleted link ends the chain there; the deleted response is gone.
    deleted = await stub.DeleteStoredResponse(pb.DeleteStoredResponseRequest(tenant_id=tenant, response_id=second))
    assert deleted.response_id == second
    chain = await stub.GetStoredResponseChain(
        pb.GetStoredResponseChainRequest(tenant_id=tenant, response_id=third))
    assert [r.response_id for r in chain.responses] == [third]
    for call in (stub.GetStoredResponse(pb.GetStoredResponseRequest(tenant_id=tenant, response_id=second)),
                 stub.DeleteStoredResponse(pb.DeleteStoredResponseRequest(tenant_id=tenant, response_id=second))):
        code, _ = await _code(call)
        assert code == grpc.StatusCode.NOT_FOUND


async def test_bad_input_is_refused_by_name(stub):
    tenant = "t-" + secrets.token_hex(4)
    bad = [(_set(tenant, _rid(), status=pb.STORED_RESPONSE_STATUS_UNSPECIFIED), "status"),
           (_set(tenant, ""), "response_id")]
    not_json = _set(tenant, _rid())
    not_json.response_json = b"[1, 2]"
    bad.append((not_json, "response_json"))
    not_items = _set(tenant, _rid())
    not_items.input_items_json = b"{not json"
    bad.append((not_items, "input_items_json"))
    for request, param in bad:
        code, md = await _code(stub.SetStoredResponse(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and md["x-error-param"] == param, md


@pytest.mark.parametrize("process", [{"SWITCHBOARD_MEMORY_RESPONSE_TTL_SECONDS": "2",
                                      "SWITCHBOARD_MEMORY_RETENTION_SWEEP_SECONDS": "0.2",
                                      "SWITCHBOARD_MEMORY_RESPONSE_CHAIN_MAX": "3"}],
                         indirect=True, ids=["ttl-2s"])
async def test_retention_deletes_expired_rows_and_the_chain_is_bounded(stub, process, database_url):
    tenant = "t-" + secrets.token_hex(4)
    ids = [_rid() for _ in range(4)]
    for i, response_id in enumerate(ids):
        await stub.SetStoredResponse(_set(tenant, response_id, previous=ids[i - 1] if i else ""))
    chain = await stub.GetStoredResponseChain(pb.GetStoredResponseChainRequest(tenant_id=tenant, response_id=ids[2]))
    assert len(chain.responses) == 3
    code, md = await _code(stub.GetStoredResponseChain(
        pb.GetStoredResponseChainRequest(tenant_id=tenant, response_id=ids[3])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert md["x-error-code"] == "previous_response_chain_too_long"

    engine = db.create_engine(database_url)
    try:
        count = select(func.count()).select_from(responses).where(responses.c.tenant_id == tenant)
        async with engine.connect() as conn:
            assert (await conn.execute(count)).scalar_one() == 4
        deadline = time.monotonic() + 20
        left = 4
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with engine.connect() as conn:
                left = (await conn.execute(count)).scalar_one()
        assert left == 0, "the sweep did not delete the expired responses"
    finally:
        await engine.dispose()
    code, _ = await _code(stub.GetStoredResponse(pb.GetStoredResponseRequest(tenant_id=tenant, response_id=ids[0])))
    assert code == grpc.StatusCode.NOT_FOUND
    assert any(e["event"] == "expired responses deleted" for e in process.events())
