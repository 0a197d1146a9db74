"""latency_optimized: the lowest EWMA of observed latency (time to first token for streams).

A deployment with no sample yet goes first, so each is measured; and a small share of requests
(`EXPLORE`) goes to a random other deployment first, so one that was slow and recovered is seen
again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from switchboard_router.domain import Target
from switchboard_router.strategies.base import Choice

EXPLORE = 0.05


class LatencyOptimized:
    needs_prices = False

    def __init__(self, rng: Callable[[], float]) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], choice: Choice) -> list[Target]:
        def rank(t: Target) -> float:
            ewma = t.deployment.stats.ewma_ms(stream=choice.stream)
            return -1.0 if ewma is None else ewma

        ordered = sorted(targets, key=rank)
        if len(ordered) > 1 and self._rng() < EXPLORE:
            pick = 1 + int(self._rng() * (len(ordered) - 1)) % (len(ordered) - 1)
            ordered.insert(0, ordered.pop(pick))
        return ordered
