"""Budget alerts delivered from the outbox: the budget.alert event on real JetStream and a signed
webhook POST to a receiver this test runs, retried with backoff while it fails, once per
threshold, and still delivered after billing restarts with it queued."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from contextlib import suppress

import grpc
import nats
import orjson
import pytest
from aiohttp import web
from switchboard.billing.v1 import billing_pb2 as pb
from switchboard.billing.v1 import billing_pb2_grpc
from switchboard.events.v1 import events_pb2

from switchboard_billing import bootstrap, server
from switchboard_billing.alerts import SIGNATURE_HEADER
from switchboard_billing.settings import BillingSettings

from .test_billing_budgets import DOLLAR, set_budget, usage
from .test_billing_grpc import ADMIN, fake_auth  # noqa: F401

SECRET = "whsec-" + secrets.token_hex(8)


class Receiver:
    """A webhook endpoint on a free port: fails the first `failures` POSTs with a 500."""

    def __init__(self, failures: int) -> None:
        self.failures, self.received = failures, []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((request.headers.copy(), body))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def receiver():
    hooks = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield hooks, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def started(settings: BillingSettings):
    app = await bootstrap.build(settings, consume=False)
    grpc_server, _ = server.create(app)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return app, grpc_server, channel, billing_pb2_grpc.BillingServiceStub(channel)


async def test_alerts_are_signed_retried_and_survive_a_restart(tmp_path, database_url, nats_url,
                                                               fake_auth, receiver, eventually):
    hooks, url = receiver
    tag = secrets.token_hex(4)
    settings = BillingSettings(
        data_dir=tmp_path, database_url=database_url, nats_url=nats_url, auth_target=fake_auth[1],
        alerts_stream=f"SBTEST_ALERTS_{tag}", alert_subject=f"sbtest.{tag}.budget.alert",
        alert_backoff_seconds=0.05, alert_backoff_max_seconds=0.2, alert_poll_seconds=0.05)
    key, tenant = f"k{tag}", f"t{tag}"
    app, grpc_server, channel, stub = await started(settings)
    try:
        await set_budget(stub, key_id=key, monthly_limit_micros_usd=10 * DOLLAR,
                         webhook_url=url, webhook_secret=SECRET)
        await app.consumer.store([usage(key, tenant, 6 * DOLLAR)])  # 60 %: the 50 % alert
    finally:  # billing stops with both deliveries still queued
        await channel.close()
        await grpc_server.stop(None)
        await app.close()
    assert hooks.received == []

    app, grpc_server, channel, stub = await started(settings)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        app.alerts.start()
        async def answered():
            return len(hooks.received) >= 3  # 500, 500, then 204

        await eventually(answered, timeout=20)
        headers, body = hooks.received[-1]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected
        alert = orjson.loads(body)
        assert (alert["key_id"], alert["threshold_percent"], alert["unit"]) == (key, 50, "usd")
        assert alert["spent_micros_usd"] == 6 * DOLLAR and alert["limit_micros_usd"] == 10 * DOLLAR
        assert len({b for _, b in hooks.received}) == 1  # the same alert, retried

        sub = await js.pull_subscribe(settings.alert_subject, durable=f"t{tag}",
                                      stream=settings.alerts_stream)
        (msg,) = await sub.fetch(1, timeout=10)
        event = events_pb2.BudgetAlert.FromString(msg.data)
        assert event.alert_id == alert["alert_id"] and msg.headers["Nats-Msg-Id"] == event.alert_id

        # Crossing the same threshold again in the period sends nothing more.
        await app.consumer.store([usage(key, tenant, DOLLAR // 10)])
        await asyncio.sleep(0.5)
        assert len(hooks.received) == 3
        budget = await stub.GetBudget(pb.GetBudgetRequest(key_id=key),
                                      metadata=(("authorization", "Bearer " + ADMIN),), timeout=5)
        assert budget.webhook_url == url
    finally:
        with suppress(Exception):
            await js.delete_stream(settings.alerts_stream)
        await nc.close()
        await channel.close()
        await grpc_server.stop(None)
        await app.close()

