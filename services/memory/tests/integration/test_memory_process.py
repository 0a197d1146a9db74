"""`python -m switchboard_memory` as the launcher runs it: health, reflection, a clean SIGTERM."""

from __future__ import annotations

import asyncio

import grpc
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc

from switchboard_common.testing.processes import ServiceProcess, reflected_services

SERVICE = "switchboard.memory.v1.MemoryService"


async def test_memory_process_serves_refuses_keyless_admin_calls_and_stops_cleanly(tmp_path):
    memory = ServiceProcess("memory", SERVICE, tmp_path, {
        "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5"})
    try:
        await asyncio.to_thread(memory.wait_serving)
        async with grpc.aio.insecure_channel(memory.target) as channel:
            stub = memory_pb2_grpc.MemoryServiceStub(channel)
            try:
                await stub.ListCollections(memory_pb2.ListCollectionsRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                assert dict(exc.trailing_metadata())["x-error-code"] == "missing_api_key"
            else:
                raise AssertionError("ListCollections without a key must be refused")
        with grpc.insecure_channel(memory.target) as sync_channel:
            assert SERVICE in reflected_services(sync_channel)
        assert await asyncio.to_thread(memory.stop, 20) == 0, memory.logs()[-2000:]
    finally:
        memory.kill()
    events = [e["event"] for e in memory.events()]
    assert "memory ready" in events and "stopped" in events
    assert "Traceback" not in memory.logs()
    assert (tmp_path / "memory.db").exists()
