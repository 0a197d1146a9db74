"""What the router does with each request once its usage is final, besides the usage event: its
log line (request_log.py) and its metrics (metrics.py), both from one cost computation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard_router import request_log
from switchboard_router.domain import Tokens
from switchboard_router.metrics import RequestMetrics


class Finished:
    def __init__(self, cost: Callable[[Any, Tokens], int | None],
                 metrics: RequestMetrics | None) -> None:
        self._cost = cost
        self._metrics = metrics

    def __call__(self, ex: Any, tokens: Tokens) -> None:
        """One finished request (a usage.Exchange) and its final tokens."""
        cost = self._cost(ex, tokens) if ex.target is not None else None
        if self._metrics is not None:
            self._metrics.observe(ex, tokens, cost)
        request_log.line(ex, tokens, cost)
