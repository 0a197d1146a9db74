"""failover: priority order (lowest `priority` first, then the file's order); the next on failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from switchboard_router.domain import Target
from switchboard_router.strategies.base import Choice


class Failover:
    needs_prices = False

    def __init__(self, rng: Callable[[], float]) -> None:
        del rng  # deterministic

    def order(self, targets: Sequence[Target], choice: Choice) -> list[Target]:
        return sorted(targets, key=lambda t: t.deployment.priority)  # stable: file order on ties
