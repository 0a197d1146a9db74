"""Routing strategies: the order in which a model group's healthy deployments are tried.

The registry below is the one place that lists them; config validation and the router read it.
"""

from __future__ import annotations

from switchboard_router.strategies.base import Choice, PriceOf, Strategy
from switchboard_router.strategies.cost import CostOptimized
from switchboard_router.strategies.failover import Failover
from switchboard_router.strategies.latency import LatencyOptimized
from switchboard_router.strategies.load_balanced import LoadBalanced

STRATEGIES: dict[str, type[Strategy]] = {
    "load_balanced": LoadBalanced,
    "failover": Failover,
    "cost_optimized": CostOptimized,
    "latency_optimized": LatencyOptimized,
}
DEFAULT = "load_balanced"

__all__ = ["DEFAULT", "STRATEGIES", "Choice", "PriceOf", "Strategy"]
