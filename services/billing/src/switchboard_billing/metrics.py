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
_KINDS = ("prompt", "completion", "cached_prompt", "reasoning")


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
        (`labels()` takes a lock and formats its values, ~5 µs a call); the labels are bounded
        once per distinct (model, provider, key) of the batch, not per entry."""
        groups: dict[tuple[str, str, str], list] = {}
        for e in entries:
            group = groups.get(raw := (e.model, e.provider, e.key_id))
            if group is None:
                group = groups[raw] = [Counter_(), 0, 0, 0, 0, 0, 0]
            group[0][e.outcome] += 1
            group[1] += e.prompt_tokens
            group[2] += e.completion_tokens
            group[3] += e.cached_prompt_tokens
            group[4] += e.reasoning_tokens
            if e.price_unknown:
                group[5] += 1
            else:
                group[6] += e.cost_micros_usd
        requests: Counter_[tuple[str, ...]] = Counter_()
        tokens: Counter_[tuple[str, ...]] = Counter_()
        unpriced: Counter_[tuple[str, ...]] = Counter_()
        cost: Counter_[tuple[str, ...]] = Counter_()
        for (model, provider, key_id), (outcomes, *sums) in groups.items():
            labels = (self._model(model), self._provider(provider), self._key(key_id))
            for outcome, n in outcomes.items():
                requests[(*labels, outcome)] += n
            for kind, value in zip(_KINDS, sums[:4], strict=True):
                if value:
                    tokens[(*labels, kind)] += value
            if sums[4]:
                unpriced[labels] += sums[4]
            if sums[5]:
                cost[labels] += sums[5]
        for metric, totals in ((REQUESTS, requests), (TOKENS, tokens), (UNPRICED, unpriced),
                               (COST, cost)):
            for series, amount in totals.items():
                metric.labels(*series).inc(amount)
