"""The router's routing cost per request, in-process (no I/O): Routes.choose() for a model, with 1
and with 1,000 deployments configured, under each strategy. Two shapes of 1,000: spread over
1,000 models (the lookup stays a dict hit: flat), and all in one model group (the strategy
orders every healthy one: it grows with the group). The fastest of many short batches is kept,
as in bench.admission: the machine's other load only adds.

    python -m bench.routing            # prints the table
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from switchboard_router import config, strategies
from switchboard_router.codecs.openai import OpenAICodec
from switchboard_router.domain import Endpoint
from switchboard_router.providers.remote import RemoteProvider
from switchboard_router.routing import Routes, TimeoutDefaults

DEFAULTS = TimeoutDefaults(total_seconds=600, read_seconds=60, connect_seconds=10)
BATCH = 500


def _routes(deployments: int, one_group: bool, strategy: str) -> tuple[Routes, str]:
    raw: dict[str, Any] = {"providers": {"p": {"type": "openai", "base_url": "http://p/v1",
                                               "api_key": "k"}},
                           "routing": {"strategy": strategy}}
    if one_group:
        # Each strategy's own knob (failover refuses a weight, the others a priority).
        knob = "priority" if strategy == "failover" else "weight"
        raw["models"] = [{"name": "m0", "deployments": [
            {"provider": "p", "model": f"u{i}", knob: 1 + i % 3} for i in range(deployments)]}]
    else:
        raw["models"] = [{"name": f"m{i}", "deployments": [{"provider": "p", "model": f"u{i}"}]}
                         for i in range(deployments)]
    cfg = config.parse(raw, {})
    providers = {"p": RemoteProvider(OpenAICodec(None), None, None)}  # type: ignore[arg-type]
    routes = Routes(cfg, providers, DEFAULTS, created=0)
    for d in routes.deployments():  # latency_optimized ranks by what it has seen
        d.stats.answered(0.05 + (hash(d.name) % 100) / 1000)
    return routes, f"m{deployments // 2}" if not one_group else "m0"


async def plan_us(deployments: int, one_group: bool, strategy: str, batches: int = 200,
                  batch: int = BATCH) -> float:
    """µs per routing decision, the fastest of `batches` batches of `batch`."""
    routes, model = _routes(deployments, one_group, strategy)
    best = float("inf")
    gc.collect()
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(batch):
            await routes.choose(model, Endpoint.CHAT, stream=False)
        best = min(best, (time.perf_counter() - started) / batch)
    return best * 1e6


async def measure() -> list[dict[str, Any]]:
    rows = []
    for strategy in strategies.STRATEGIES:
        one = await plan_us(1, False, strategy, batches=50)
        spread = await plan_us(1000, False, strategy, batches=50)
        grouped = await plan_us(1000, True, strategy, batches=5, batch=10)
        rows.append({"strategy": strategy, "one_us": one, "thousand_models_us": spread,
                     "one_group_of_thousand_us": grouped})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| strategy | 1 deployment | 1,000 deployments, 1,000 models | 1,000 in one group |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['strategy']} | {r['one_us']:.1f} µs | {r['thousand_models_us']:.1f} µs | "
              f"{r['one_group_of_thousand_us']:.0f} µs |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(asyncio.run(measure())))
