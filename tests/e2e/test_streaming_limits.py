"""Streams through the real edge and router are relayed, never buffered: a 200 MB answer keeps the
router's memory flat, and a client that goes away stops the provider call at once, and is billed
for what it was sent."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests.e2e.test_usage_billing import create_key, wait_for_records

pytestmark = pytest.mark.timeout(180)

STREAM_BYTES = 200 * 1000 * 1000
RSS_HEADROOM = 50 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    """The process's resident set, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class PeakRss:
    """Samples a process's RSS every 20 ms on a thread, keeping the highest."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def chat(stack, secret: str, content: str, **fields) -> dict:
    return {"url": stack.edge_url + "/v1/chat/completions",
            "headers": {"authorization": f"Bearer {secret}"},
            "json": {"model": "gpt-4o-mini", "stream": True,
                     "messages": [{"role": "user", "content": content}], **fields}}


def fake_log(fake_openai: str, tag: str, timeout: float = 10) -> dict:
    """How the fake upstream saw the tagged request end, once it has."""
    url = f"{fake_openai.removesuffix('/v1')}/_fake/requests/{tag}"
    deadline = time.monotonic() + timeout
    while True:
        resp = httpx.get(url, timeout=5)
        if resp.status_code == 200 and resp.json()["outcome"] != "running":
            return resp.json()
        assert time.monotonic() < deadline, f"the upstream request {tag} has not ended"
        time.sleep(0.02)


def test_a_200_mb_stream_keeps_the_routers_memory_flat(stack):
    router = stack.services["router"].pid
    request = chat(stack, stack.master_key, "big answer please [fake:size-200000000]")
    idle = rss_bytes(router)
    received, tail = 0, b""
    with PeakRss(router) as rss, httpx.stream("POST", **request, timeout=120) as resp:
        assert resp.status_code == 200
        for data in resp.iter_raw(1 << 20):
            received += len(data)
            tail = (tail + data)[-64:]
    assert received >= STREAM_BYTES and tail.endswith(b"data: [DONE]\n\n")
    grown = rss.peak - idle
    assert grown < RSS_HEADROOM, f"the router grew by {grown / 2**20:.0f} MiB while relaying"


def test_a_client_gone_through_the_edge_stops_the_upstream_call(stack, fake_openai):
    key_id, secret = create_key(stack)
    tag = f"abort-{uuid.uuid4().hex[:12]}"
    words = " ".join(f"w{i}" for i in range(200))  # 200 chunks, 50 ms apart: a 10 s stream
    request = chat(stack, secret, f"{words} [fake:slow-50,tag-{tag}]")
    with httpx.stream("POST", **request, timeout=30) as resp:
        assert resp.status_code == 200
        seen = b""
        for data in resp.iter_raw():
            seen += data
            if seen.count(b'"content"') >= 3:
                break
        left = time.time()
    # Closing the response closed the client's connection to Envoy; Envoy resets the router's
    # stream, the router closes the provider's connection, and the fake notices it.
    ended = fake_log(fake_openai, tag)
    assert ended["outcome"] == "client_closed"
    assert ended["ended_at"] - left < 2.0, "the upstream call outlived the client by too long"
    (record,) = wait_for_records(stack, key_id, 1)
    assert record["outcome"] == "client_abort"
    # Billed for what was produced before the client left, counted from the text (no usage came).
    assert 0 < record["completion_tokens"] < 200
