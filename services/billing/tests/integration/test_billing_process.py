"""`python -m switchboard_billing` as the launcher runs it: serves even while NATS is unreachable."""

from __future__ import annotations

import asyncio

import grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

from switchboard_common.testing.processes import ServiceProcess

SERVICE = "switchboard.billing.v1.BillingService"


async def test_billing_process_serves_without_nats_and_stops_cleanly(tmp_path):
    billing = ServiceProcess("billing", SERVICE, tmp_path, {
        "SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",  # nothing listens there
        "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5"})
    try:
        await asyncio.to_thread(billing.wait_serving)
        async with grpc.aio.insecure_channel(billing.target) as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            try:
                await stub.GetSpend(billing_pb2.GetSpendRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                assert dict(exc.trailing_metadata())["x-error-code"] == "missing_api_key"
            else:
                raise AssertionError("GetSpend without a key must be refused")
        assert await asyncio.to_thread(billing.stop, 20) == 0, billing.logs()[-2000:]
    finally:
        billing.kill()
    events = [e["event"] for e in billing.events()]
    assert "serving" in events and "stopped" in events
    # NATS was down throughout: one short warning per kind of error, not a traceback per attempt.
    nats_errors = [e["error"] for e in billing.events() if e["event"] == "nats error"]
    assert nats_errors and len(nats_errors) == len(set(nats_errors))
    assert "Traceback" not in billing.logs()
    assert (tmp_path / "billing.db").exists()
