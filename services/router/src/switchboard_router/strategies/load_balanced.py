"""load_balanced (the default): weighted random spread, least in flight (per weight) first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from switchboard_router.domain import Target
from switchboard_router.strategies.base import Choice, weighted_keys


class LoadBalanced:
    needs_prices = False

    def __init__(self, rng: Callable[[], float]) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], choice: Choice) -> list[Target]:
        keys = weighted_keys(targets, self._rng)
        # Idle deployments all tie on load, so at low traffic this is the weighted spread; under
        # load a deployment with fewer requests in flight per unit of weight goes first.
        return sorted(targets, key=lambda t: (t.deployment.stats.in_flight / t.deployment.weight,
                                              -keys[id(t)]))
