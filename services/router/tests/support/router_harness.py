"""A running router for integration tests: real grpc.aio server, fake auth, fake upstream, NATS."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml
from google.api import httpbody_pb2
from router_fakes import (
    ADMIN_KEY,
    GOOD_KEY,
    LIMITED_KEY,
    FakeAuth,
    FakeBilling,
    FakeKey,
    FakeUpstream,
    start_auth,
    start_billing,
)
from switchboard.gateway.v1 import gateway_pb2_grpc
from switchboard_router import bootstrap, server
from switchboard_router.settings import RouterSettings
from switchboard_router.tokens import Tokenizer


def router_config(upstream_url: str) -> dict:
    fake = {"type": "openai", "base_url": upstream_url, "api_key": "sk-upstream-secret"}
    return {
        "providers": {
            "local": {"type": "local"},
            "fake": fake,
            "fake2": dict(fake),
            # Nothing listens on port 9: connecting fails at once.
            "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k",
                     "connect_timeout_seconds": 1},
            "nokey": {"type": "openai", "base_url": upstream_url,
                      "api_key": "${ROUTER_TEST_MISSING_KEY:-}"},
        },
        "models": [
            {"name": "switchboard-local", "deployments": [{"provider": "local", "model": "echo"}]},
            {"name": "ok-model", "deployments": [{"provider": "fake", "model": "ok-model"}]},
            {"name": "no-usage", "deployments": [{"provider": "fake"}]},
            {"name": "limited", "deployments": [{"provider": "fake", "model": "rate-limited"}]},
            {"name": "broken", "deployments": [{"provider": "fake"}]},
            {"name": "bad-creds", "deployments": [{"provider": "fake"}]},
            {"name": "bad-request", "deployments": [{"provider": "fake"}]},
            {"name": "midstream-abort", "deployments": [{"provider": "fake"}]},
            {"name": "slow-stream", "deployments": [{"provider": "fake"}]},
            {"name": "with-failover", "strategy": "failover", "deployments": [
                {"provider": "fake", "model": "broken"},
                {"provider": "fake2", "model": "ok-failover"}]},
            {"name": "unreachable-then-ok", "strategy": "failover", "deployments": [
                {"provider": "dead", "model": "x"}, {"provider": "fake", "model": "ok-2"}]},
            {"name": "slow-answer", "deployments": [{"provider": "fake", "timeout_seconds": 0.3}]},
            {"name": "stall-stream", "deployments": [{"provider": "fake", "read_timeout_seconds": 0.3}]},
            {"name": "slow-start", "deployments": [{"provider": "fake"}]},
            {"name": "stall-body", "deployments": [{"provider": "fake", "read_timeout_seconds": 0.3}]},
            {"name": "slow-twice", "strategy": "failover", "deployments": [
                {"provider": "fake", "model": "slow-start", "timeout_seconds": 0.5},
                {"provider": "fake2", "model": "slow-start", "timeout_seconds": 0.5}]},
            {"name": "future-fields", "deployments": [{"provider": "fake"}]},
            {"name": "gpt-secret", "deployments": [{"provider": "nokey"}]},
            {"name": "omni-moderation-latest", "deployments": [{"provider": "fake"}]},
            {"name": "fake/*", "deployments": [{"provider": "fake"}]},
        ],
        # These tests see one attempt per deployment; retries have tests of their own.
        "routing": {"retries": {"attempts": 0}},
    }


@dataclass
class Harness:
    app: bootstrap.App
    server: grpc.aio.Server
    channel: grpc.aio.Channel
    stub: gateway_pb2_grpc.GatewayServiceStub
    auth: FakeAuth
    upstream: FakeUpstream
    subject: str
    stream: str | None
    js: object | None
    billing: FakeBilling | None = None

    def md(self, key: str | None = GOOD_KEY, request_id: str | None = None) -> tuple:
        out = [("x-request-id", request_id or uuid.uuid4().hex)]
        if key:
            out.append(("authorization", f"Bearer {key}"))
        return tuple(out)

    async def chat(self, body: bytes, **md):
        call = self.stub.ChatCompletions(httpbody_pb2.HttpBody(content_type="application/json",
                                                               data=body), metadata=self.md(**md))
        return call, [m async for m in call]

    async def events(self, count: int, timeout: float = 5.0) -> list:
        """The usage events published so far, once there are `count` of them: (headers, event)
        for each record of each UsageBatch, headers being its batch message's."""
        from switchboard.events.v1 import events_pb2

        deadline = asyncio.get_running_loop().time() + timeout
        out: list = []
        seen = 0
        while True:
            info = await self.js.stream_info(self.stream)
            for seq in range(seen + 1, info.state.messages + 1):
                msg = await self.js.get_msg(self.stream, seq)
                assert msg.subject == self.subject + ".batch", msg.subject
                batch = events_pb2.UsageBatch.FromString(msg.data)
                assert (msg.headers or {}).get("Nats-Msg-Id") == batch.batch_id
                out.extend((msg.headers or {}, event) for event in batch.records)
            seen = info.state.messages
            if len(out) >= count or asyncio.get_running_loop().time() > deadline:
                return out
            await asyncio.sleep(0.05)


async def start_router(tmp_path: Path, tokenizer: Tokenizer, nats_url: str, *,
                       upstream: FakeUpstream | None = None, with_stream: bool = True,
                       auth_keys: dict | None = None, billing: FakeBilling | None = None,
                       config: dict | None = None, **overrides) -> Harness:
    import nats

    upstream = upstream or FakeUpstream()
    if not upstream.port:
        await upstream.start()
    auth_server, auth_port, fake_auth = await start_auth(auth_keys or {
        GOOD_KEY: FakeKey("key-good"), ADMIN_KEY: FakeKey("key-admin", is_admin=True),
        LIMITED_KEY: FakeKey("key-limited", allowed_models=("switchboard-local",))})
    billing = billing or FakeBilling({})
    billing_server, billing_port = await start_billing(billing)
    config_path = tmp_path / "switchboard.yaml"
    # `config`: top-level sections replacing (or added to) the harness's switchboard.yaml.
    config_path.write_text(yaml.safe_dump(router_config(upstream.base_url) | (config or {})))
    tag = uuid.uuid4().hex[:12]
    subject = f"t{tag}.usage.recorded"
    js = stream = None
    if with_stream:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        stream = f"T{tag}"
        await js.add_stream(name=stream, subjects=[subject, f"{subject}.batch"], duplicate_window=60)
    settings = RouterSettings(
        grpc_port=0, config_path=config_path, auth_target=f"127.0.0.1:{auth_port}",
        billing_target=f"127.0.0.1:{billing_port}",
        nats_url=nats_url, data_dir=tmp_path / "data", usage_subject=subject,
        ensure_usage_stream=False, **overrides)
    app = await bootstrap.build(settings, env={}, tokenizer=tokenizer)
    grpc_srv, _ = server.build(app)
    port = grpc_srv.add_insecure_port("127.0.0.1:0")
    await grpc_srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    harness = Harness(app=app, server=grpc_srv, channel=channel,
                      stub=gateway_pb2_grpc.GatewayServiceStub(channel), auth=fake_auth,
                      upstream=upstream, subject=subject, stream=stream, js=js)
    harness.billing = billing
    harness._closers = [auth_server, billing_server]  # type: ignore[attr-defined]
    harness._nc = js._nc if js else None  # type: ignore[attr-defined]
    return harness


async def stop_router(h: Harness) -> None:
    await h.channel.close()
    await h.server.stop(0)
    await h.app.close()
    for srv in h._closers:  # type: ignore[attr-defined]
        await srv.stop(0)
    await h.upstream.close()
    if h.js is not None:
        try:
            await h.js.delete_stream(h.stream)
        finally:
            await h._nc.close()  # type: ignore[attr-defined]
