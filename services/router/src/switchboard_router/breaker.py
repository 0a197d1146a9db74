"""A circuit breaker per deployment, and the cooldown of a deployment that throttled us.

closed: traffic flows; `threshold` failures in a row open it, and so does a failure rate of
`failure_rate` or more over the last `window` calls (once `min_calls` of them are in), so a
deployment failing every other call is taken out too. open: no traffic for `open_seconds`, then
half-open. half-open: one probe request at a time; its success closes the breaker, its
failure opens it again for another `open_seconds`. A throttled deployment (429) is not broken: it
cools down until its Retry-After has passed, without counting towards opening the breaker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum


class State(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("_threshold", "_open_seconds", "_clock", "_failures", "_opened_at", "_probing",
                 "_cool_until", "_failure_rate", "_min_calls", "_recent", "_recent_failures")

    def __init__(self, threshold: int, open_seconds: float,
                 clock: Callable[[], float] = time.monotonic, *, failure_rate: float = 0.5,
                 window: int = 20, min_calls: int = 10) -> None:
        self._threshold = threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0  # in a row
        self._failure_rate = failure_rate
        self._min_calls = min_calls
        self._recent: deque[bool] = deque(maxlen=window)  # outcomes while closed: True = failed
        self._recent_failures = 0
        self._opened_at: float | None = None
        self._probing = False  # a half-open probe is in flight
        self._cool_until = 0.0

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return State.CLOSED
        if self._clock() - self._opened_at < self._open_seconds:
            return State.OPEN
        return State.HALF_OPEN

    @property
    def cooling(self) -> bool:
        return self._clock() < self._cool_until

    def available(self) -> bool:
        """Worth sending a request to now: closed and not cooling, or half-open with no probe out."""
        if self._opened_at is None and not self._cool_until:
            return True  # closed and never throttled: the common case reads no clock
        if self.cooling:
            return False
        state = self.state
        return state is State.CLOSED or (state is State.HALF_OPEN and not self._probing)

    def attempt(self) -> None:
        """A request goes to this deployment; in half-open it is the probe."""
        if self._opened_at is not None and self.state is State.HALF_OPEN:
            self._probing = True

    def succeeded(self) -> None:
        if self._opened_at is not None:  # the probe succeeded: closed again, with a clean slate
            self._recent.clear()
            self._recent_failures = 0
        else:
            self._note(False)
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self._failures += 1
        was_probe, self._probing = self._probing, False
        if self._opened_at is None:
            self._note(True)
        rate_high = (len(self._recent) >= self._min_calls
                     and self._recent_failures >= self._failure_rate * len(self._recent))
        if was_probe or self._failures >= self._threshold or rate_high:
            self._opened_at = self._clock()
            self._recent.clear()
            self._recent_failures = 0

    def _note(self, failed: bool) -> None:
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._recent_failures -= 1  # the oldest outcome leaves the window
        self._recent.append(failed)
        self._recent_failures += failed

    def released(self) -> None:
        """The attempt ended neither way (the client left): a probe slot is free again."""
        self._probing = False

    def throttled(self, seconds: float) -> None:
        self._probing = False
        self._cool_until = max(self._cool_until, self._clock() + seconds)
