"""Prometheus counters of what billing stored: requests, tokens and cost per model, provider and
key. Label values come from clients (keys, passthrough model names), so each label keeps its
first `limit` distinct values and counts the rest as "other": the series stay bounded."""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Iterable

from prometheus_client import Counter

from switchboard_billing.domain import UsageEntry

_LABELS = ["model", "provider", "key_id"]
REQUESTS = Counter("switchboard_billing_requests_total", "Usage records stored",
                   [*_LABELS, "outcome"])
TOKENS = Counter("switchboard_billing_tokens_total", "Tokens of stored usage records",
                 [*_LABELS, "kind"])  # prompt, completion, cached_prompt, reasoning
COST = Counter("switchboard_billing_cost_micros_usd_total",
               "Cost of stored usage records in micro-dollars (priced requests only)", _LABELS)
UNPRICED = Counter("switchboard_billing_unpriced_requests_total",
                   "Stored requests whose model has no known price (billed 0)", _LABELS)
OTHER = "other"


class BoundedLabel:
    """The first `limit` distinct values pass as they are; later ones become "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


class UsageMetrics:
    def __init__(self, key_limit: int = 1000, model_limit: int = 500) -> None:
        self._key = BoundedLabel(key_limit)
        self._model = BoundedLabel(model_limit)
        self._provider = BoundedLabel(100)

    def count(self, entries: Iterable[UsageEntry]) -> None:
        """Sums the batch per series first: one increment per series and batch, not per entry
        (`labels()` takes a lock and formats its values, ~5 µs a call)."""
        requests: Counter_[tuple[str, ...]] = Counter_()
        tokens: Counter_[tuple[str, ...]] = Counter_()
        unpriced: Counter_[tuple[str, ...]] = Counter_()
        cost: Counter_[tuple[str, ...]] = Counter_()
        for e in entries:
            labels = (self._model(e.model), self._provider(e.provider), self._key(e.key_id))
            requests[(*labels, e.outcome)] += 1
            for kind, value in (("prompt", e.prompt_tokens), ("completion", e.completion_tokens),
                                ("cached_prompt", e.cached_prompt_tokens),
                                ("reasoning", e.reasoning_tokens)):
                if value:
                    tokens[(*labels, kind)] += value
            if e.price_unknown:
                unpriced[labels] += 1
            elif e.cost_micros_usd:
                cost[labels] += e.cost_micros_usd
        for metric, sums in ((REQUESTS, requests), (TOKENS, tokens), (UNPRICED, unpriced),
                             (COST, cost)):
            for series, amount in sums.items():
                metric.labels(*series).inc(amount)
