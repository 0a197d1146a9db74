"""What a strategy is given and what it returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from switchboard_router.domain import Target

# Micro-dollars for a reference request (a million input and a million output tokens) on a
# target, or None while its price is not known.
PriceOf = Callable[[Target], int | None]


@dataclass(frozen=True, slots=True)
class Choice:
    """What the strategy may weigh for this request."""

    stream: bool
    price_of: PriceOf


class Strategy(Protocol):
    needs_prices: bool

    def __init__(self, rng: Callable[[], float]) -> None: ...

    def order(self, targets: Sequence[Target], choice: Choice) -> list[Target]:
        """The healthy targets in the order to try them (all of them, best first)."""


def weighted_keys(targets: Sequence[Target], rng: Callable[[], float]) -> dict[int, float]:
    """Efraimidis-Spirakis keys: sorting by them descending is a weighted random order."""
    return {id(t): rng() ** (1.0 / t.deployment.weight) for t in targets}
