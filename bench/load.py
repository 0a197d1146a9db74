"""Closed-loop HTTP load: N workers, one keep-alive connection each, each sending its next
request as soon as the last one has been read to its last byte. Measures; decides nothing."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import aiohttp

_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Workload:
    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool  # read SSE: time the first body bytes, and expect `data: [DONE]` at the end


@dataclass
class Measurement:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, request sent to last byte
    first_bytes: list[float] = field(default_factory=list)  # seconds to the first body bytes
    errors: int = 0
    first_error: str | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def latency_ms(self, p: float) -> float | None:
        return _percentile(self.latencies, p)

    def first_byte_ms(self, p: float) -> float | None:
        return _percentile(self.first_bytes, p)

    def failed(self, why: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or why


class ClosedLoop:
    """`async with ClosedLoop(workload, 16) as load: await load.run(5.0)`; runs share connections,
    so a warm-up run leaves them open for the measured one."""

    def __init__(self, workload: Workload, concurrency: int, request_timeout: float = 30.0):
        self.workload = workload
        self.concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ClosedLoop:
        connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def run(self, seconds: float, max_requests: int) -> Measurement:
        """Send requests for `seconds` (no new one starts after that) or until `max_requests`."""
        result = Measurement()
        deadline = time.perf_counter() + seconds
        budget = [max_requests]

        async def worker() -> None:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                if not await self._one(result):
                    await asyncio.sleep(0.01)  # a failing target must not turn into a busy loop

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        result.seconds = time.perf_counter() - start
        return result

    async def _one(self, result: Measurement) -> bool:
        w, session = self.workload, self._session
        assert session is not None
        sent = time.perf_counter()
        first = None
        try:
            async with session.post(w.url, data=w.body, headers=w.headers) as response:
                if not w.stream:
                    await response.read()
                else:
                    tail = await response.content.readany()
                    first = time.perf_counter()
                    while chunk := await response.content.readany():
                        tail = (tail + chunk)[-len(_DONE):]
                if response.status != 200:
                    result.failed(f"HTTP {response.status}")
                    return False
                if w.stream and not tail.endswith(_DONE):
                    result.failed("stream ended without data: [DONE]")
                    return False
        except (TimeoutError, aiohttp.ClientError) as e:
            result.failed(f"{type(e).__name__}: {e}")
            return False
        done = time.perf_counter()
        result.latencies.append(done - sent)
        if first is not None:
            result.first_bytes.append(first - sent)
        return True


def _percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile in milliseconds; None when nothing was measured."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1] * 1000
