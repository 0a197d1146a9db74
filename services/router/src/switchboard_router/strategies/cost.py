"""cost_optimized: the cheapest healthy deployment by billing's price catalog (prices.py);
deployments whose price is not known yet go after the priced ones, spread by weight."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from switchboard_router.domain import Target
from switchboard_router.strategies.base import Choice, weighted_keys


class CostOptimized:
    needs_prices = True

    def __init__(self, rng: Callable[[], float]) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], choice: Choice) -> list[Target]:
        keys = weighted_keys(targets, self._rng)

        def rank(t: Target) -> tuple[float, float]:
            price = choice.price_of(t)
            return (math.inf if price is None else price, -keys[id(t)])

        return sorted(targets, key=rank)
