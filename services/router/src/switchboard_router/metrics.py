"""The router's request metrics, in Prometheus: Switchboard's own names (`switchboard_requests_total`,
`switchboard_request_latency_ms`, `switchboard_tokens_processed_total`, `switchboard_cost_usd_total`)
and the OpenTelemetry GenAI semantic-convention histograms under their Prometheus spellings
(`gen_ai.client.operation.duration` -> `gen_ai_client_operation_duration_seconds`,
`gen_ai.client.token.usage` -> `gen_ai_client_token_usage`, `gen_ai.server.time_to_first_token`
-> `gen_ai_server_time_to_first_token_seconds`; https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/).

Observed once per request, when its usage is final. Label values stay bounded whatever clients
send: a model is labelled by its name only when switchboard.yaml names it (a wildcard route's
model by the route, `openai/*`; anything else `other`), and key ids only when the operator opts in
(SWITCHBOARD_ROUTER_METRICS_KEY_LABELS). The labelled children are cached per label set, so the hot
path does one dict lookup and a few increments.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from switchboard_router.domain import Endpoint, Tokens
from switchboard_router.prices import Prices, answering_rates

_MILLION = 1_000_000
_LABELS = ("model", "provider", "deployment", "key", "outcome", "status")
_USAGE_LABELS = ("model", "provider", "deployment", "key")
_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type")
# The GenAI spec's advisory bucket boundaries.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864)
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                 7.5, 10.0)
_LATENCY_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                       120000, 300000)

REQUESTS = Counter("switchboard_requests", "Model requests answered by the router", _LABELS)
LATENCY_MS = Histogram("switchboard_request_latency_ms", "Model request latency, milliseconds",
                       _LABELS, buckets=_LATENCY_MS_BUCKETS)
TOKENS = Counter("switchboard_tokens_processed", "Tokens processed (prompt and completion)",
                 (*_USAGE_LABELS, "type"))
COST_USD = Counter("switchboard_cost_usd", "Cost of the requests at billing's rates, US dollars",
                   _USAGE_LABELS)
OPERATION_SECONDS = Histogram("gen_ai_client_operation_duration", "GenAI operation duration",
                              _GENAI, unit="seconds", buckets=_DURATION_BUCKETS)
TOKEN_USAGE = Histogram("gen_ai_client_token_usage", "Number of input and output tokens used",
                        (*_GENAI[:3], "gen_ai_token_type"), buckets=_TOKEN_BUCKETS)
TIME_TO_FIRST_TOKEN = Histogram("gen_ai_server_time_to_first_token",
                                "Time to the first token of a streamed answer", _GENAI[:3],
                                unit="seconds", buckets=_TTFT_BUCKETS)

# gen_ai.operation.name for each endpoint (the spec's well-known values).
_OPERATION = {Endpoint.CHAT: "chat", Endpoint.COMPLETIONS: "text_completion",
              Endpoint.EMBEDDINGS: "embeddings", Endpoint.MODERATIONS: "moderations"}


# A labelled child's value, incremented as its own inc() and observe() would, without the checks
# prometheus_client repeats on each call (the child observable, the amount not negative: ours
# always are) nor its linear search of a histogram's buckets: ~40 Python calls a request fewer,
# ~4 % of the router's instructions (README, "make bench-instructions"). prometheus_client is
# pinned (requirements.lock); test_request_metrics compares these with its own inc/observe.
def _counter(child: Counter) -> Any:
    return child._value


@dataclass(slots=True)
class _Histogram:
    sum: Any
    buckets: list[Any]
    bounds: list[float]

    @classmethod
    def of(cls, child: Histogram) -> _Histogram:
        return cls(child._sum, child._buckets, list(child._upper_bounds))

    def observe(self, amount: float) -> None:
        self.sum.inc(amount)
        self.buckets[bisect_left(self.bounds, amount)].inc(1)  # the first bound >= amount


@dataclass(slots=True)
class _Children:
    requests: Any
    latency_ms: _Histogram
    operation: _Histogram


@dataclass(slots=True)
class _UsageChildren:
    prompt: Any
    completion: Any
    cost: Any
    input_usage: _Histogram
    output_usage: _Histogram
    ttft: _Histogram


class RequestMetrics:
    """Counts each finished request; `model_names` are the names switchboard.yaml serves exactly."""

    def __init__(self, model_names: Collection[str], *, key_labels: bool = False) -> None:
        self._models = frozenset(model_names)
        self._key_labels = key_labels
        self._children: dict[tuple, _Children] = {}
        self._usage: dict[tuple, _UsageChildren] = {}

    def model_label(self, model: str, route: str | None) -> str:
        """The model as labelled: a configured name, a wildcard route, or `other`."""
        if model in self._models:
            return model
        return route or "other"

    def observe(self, ex: Any, tokens: Tokens, cost_micros: int | None) -> None:
        """One finished request (a usage.Exchange): its latency, status, tokens and cost."""
        target = ex.target
        if target is not None:
            d = target.deployment
            provider, deployment, route = d.provider, d.name, d.route
        else:
            provider = deployment = ""
            route = None
        model = self.model_label(ex.model, route)
        key = ex.key_id if self._key_labels else ""
        status = ex.http_status
        labels = (model, provider, deployment, key, ex.outcome.name.lower(), status, ex.endpoint,
                  ex.error_type)
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = self._labelled(labels)
        ended = ex.ended if ex.ended is not None else ex.started
        seconds = ended - ex.started
        children.requests.inc(1)
        children.latency_ms.observe(seconds * 1000)
        children.operation.observe(seconds)
        if target is None:
            return
        usage_labels = (model, provider, deployment, key, ex.endpoint)
        usage = self._usage.get(usage_labels)
        if usage is None:
            usage = self._usage[usage_labels] = self._usage_labelled(usage_labels)
        if tokens.prompt:
            usage.prompt.inc(tokens.prompt)
            usage.input_usage.observe(tokens.prompt)
        if tokens.completion:
            usage.completion.inc(tokens.completion)
            usage.output_usage.observe(tokens.completion)
        if cost_micros:
            usage.cost.inc(cost_micros / _MILLION)
        if ex.stream and ex.first_byte is not None:
            usage.ttft.observe(ex.first_byte - ex.started)

    @staticmethod
    def _labelled(labels: tuple) -> _Children:
        model, provider, deployment, key, outcome, status, endpoint, error_type = labels
        if outcome == "success":
            error_type = ""
        elif not error_type:
            error_type = outcome if outcome != "error" else "_OTHER"
        return _Children(
            requests=_counter(REQUESTS.labels(model, provider, deployment, key, outcome, str(status))),
            latency_ms=_Histogram.of(LATENCY_MS.labels(model, provider, deployment, key, outcome,
                                                       str(status))),
            operation=_Histogram.of(OPERATION_SECONDS.labels(_OPERATION[endpoint], provider, model,
                                                             error_type)))

    @staticmethod
    def _usage_labelled(labels: tuple) -> _UsageChildren:
        model, provider, deployment, key, endpoint = labels
        operation = _OPERATION[endpoint]
        return _UsageChildren(
            prompt=_counter(TOKENS.labels(model, provider, deployment, key, "prompt")),
            completion=_counter(TOKENS.labels(model, provider, deployment, key, "completion")),
            cost=_counter(COST_USD.labels(model, provider, deployment, key)),
            input_usage=_Histogram.of(TOKEN_USAGE.labels(operation, provider, model, "input")),
            output_usage=_Histogram.of(TOKEN_USAGE.labels(operation, provider, model, "output")),
            ttft=_Histogram.of(TIME_TO_FIRST_TOKEN.labels(operation, provider, model)))


def cached_cost(prices: Prices) -> Callable[[Any, Tokens], int | None]:
    """A request's cost from the rates the router already holds (no call to billing: a price not
    yet fetched counts no cost, as the caller's header shows none)."""
    def cost(ex: Any, tokens: Tokens) -> int | None:
        rates = answering_rates(ex, prices)
        return rates.cost(tokens) if rates is not None else None
    return cost
