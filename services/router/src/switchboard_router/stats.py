"""Per-deployment counters kept in memory: requests, faults, latency, in flight and a simple bench.

A deployment whose provider fails `failure_threshold` times in a row is benched for
`cooldown_seconds` (tried only after the healthy ones), then tried again. Full strategies and
circuit breakers are a later step; these counts are real, not estimates.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

_EWMA_ALPHA = 0.2
_WINDOW = 256  # latencies kept for the median


@dataclass(frozen=True, slots=True)
class Snapshot:
    requests: int
    errors: int
    in_flight: int
    healthy: bool
    circuit_state: str
    latency_p50_ms: float
    latency_ewma_ms: float


class DeploymentStats:
    __slots__ = ("requests", "errors", "in_flight", "_ewma_ms", "_recent", "_failures",
                 "_open_until", "_threshold", "_cooldown", "_clock")

    def __init__(self, failure_threshold: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self._ewma_ms = 0.0
        self._recent: deque[float] = deque(maxlen=_WINDOW)
        self._failures = 0
        self._open_until = 0.0
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1

    def answered(self, latency_seconds: float) -> None:
        """The provider answered (a whole reply, or a stream's first bytes)."""
        ms = latency_seconds * 1000.0
        self._ewma_ms = ms if not self._recent else self._ewma_ms + _EWMA_ALPHA * (ms - self._ewma_ms)
        self._recent.append(ms)
        self._failures = 0

    def fault(self) -> None:
        """The provider failed (rate limit, 5xx, timeout, connection, credentials)."""
        self.errors += 1
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = self._clock() + self._cooldown

    def end(self) -> None:
        self.in_flight -= 1

    @property
    def healthy(self) -> bool:
        return self._failures < self._threshold or self._clock() >= self._open_until

    def snapshot(self) -> Snapshot:
        if self._failures < self._threshold:
            state = "closed"
        else:
            state = "open" if self._clock() < self._open_until else "half_open"
        recent = sorted(self._recent)
        return Snapshot(requests=self.requests, errors=self.errors, in_flight=self.in_flight,
                        healthy=state != "open", circuit_state=state,
                        latency_p50_ms=recent[len(recent) // 2] if recent else 0.0,
                        latency_ewma_ms=self._ewma_ms)
