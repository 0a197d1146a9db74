"""Per-deployment counters kept in memory: requests, successes, latency and time to first token
(recent window and EWMA), in flight, the last error, and the deployment's circuit breaker.

These counts are this replica's own, not estimates; the strategies (strategies/) read them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard_router.breaker import CircuitBreaker, State

_EWMA_ALPHA = 0.2
_WINDOW = 256  # latencies kept for the percentiles


@dataclass(frozen=True, slots=True)
class Snapshot:
    requests: int
    successes: int
    errors: int
    in_flight: int
    healthy: bool
    circuit_state: str
    latency_p50_ms: float
    latency_p95_ms: float
    latency_ewma_ms: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    ttft_ewma_ms: float
    last_error: str
    last_error_at: datetime | None

    @property
    def success_rate(self) -> float:
        done = self.successes + self.errors
        return self.successes / done if done else 1.0


class _Window:
    """Recent samples in milliseconds (for percentiles) and their EWMA (for latency_optimized)."""

    __slots__ = ("recent", "ewma")

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=_WINDOW)
        self.ewma = 0.0

    def add(self, ms: float) -> None:
        self.ewma = ms if not self.recent else self.ewma + _EWMA_ALPHA * (ms - self.ewma)
        self.recent.append(ms)

    def percentiles(self) -> tuple[float, float]:
        if not self.recent:
            return 0.0, 0.0
        ordered = sorted(self.recent)
        return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


class DeploymentStats:
    __slots__ = ("requests", "successes", "errors", "in_flight", "latency", "ttft", "breaker",
                 "last_error", "last_error_at", "_throttle_seconds", "_max_throttle_seconds")

    def __init__(self, failure_threshold: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic, *,
                 throttle_seconds: float = 1.0, max_throttle_seconds: float = 300.0,
                 failure_rate: float = 0.5, failure_window: int = 20,
                 failure_min_calls: int = 10) -> None:
        self.requests = 0
        self.successes = 0
        self.errors = 0
        self.in_flight = 0
        self.latency = _Window()  # whole answers
        self.ttft = _Window()  # streams: time to the first bytes
        self.breaker = CircuitBreaker(failure_threshold, cooldown_seconds, clock,
                                      failure_rate=failure_rate, window=failure_window,
                                      min_calls=failure_min_calls)
        self.last_error = ""
        self.last_error_at: datetime | None = None
        self._throttle_seconds = throttle_seconds  # a 429 that names no Retry-After
        self._max_throttle_seconds = max_throttle_seconds

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1
        self.breaker.attempt()

    def answered(self, latency_seconds: float, *, stream: bool = False) -> None:
        """The provider answered (a whole reply, or a stream's first bytes)."""
        (self.ttft if stream else self.latency).add(latency_seconds * 1000.0)
        self.successes += 1
        self.breaker.succeeded()

    def fault(self, code: str = "upstream_error", *, throttled: bool = False,
              retry_after: float | None = None) -> None:
        """The provider failed (rate limit, 5xx, timeout, connection, credentials)."""
        self.errors += 1
        self.last_error, self.last_error_at = code or "upstream_error", datetime.now(UTC)
        if throttled:
            rest = retry_after if retry_after is not None else self._throttle_seconds
            self.breaker.throttled(min(rest, self._max_throttle_seconds))
        else:
            self.breaker.failed()

    def end(self) -> None:
        self.in_flight -= 1
        self.breaker.released()

    def ewma_ms(self, *, stream: bool) -> float | None:
        """The latency to rank by (time to first token for streams); None before any sample."""
        window = self.ttft if stream else self.latency
        if not window.recent:
            other = self.latency if stream else self.ttft
            return other.ewma if other.recent else None
        return window.ewma

    @property
    def healthy(self) -> bool:
        return self.breaker.available()

    def snapshot(self) -> Snapshot:
        p50, p95 = self.latency.percentiles()
        t50, t95 = self.ttft.percentiles()
        state = self.breaker.state
        return Snapshot(requests=self.requests, successes=self.successes, errors=self.errors,
                        in_flight=self.in_flight, healthy=self.healthy,
                        circuit_state=state.value if not (state is State.CLOSED and self.breaker.cooling)
                        else "cooling",
                        latency_p50_ms=p50, latency_p95_ms=p95, latency_ewma_ms=self.latency.ewma,
                        ttft_p50_ms=t50, ttft_p95_ms=t95, ttft_ewma_ms=self.ttft.ewma,
                        last_error=self.last_error, last_error_at=self.last_error_at)
