"""Model names to deployments: dict lookups built once from switchboard.yaml, and the order to try them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from switchboard_common.errors import ApiError, NotFound, NotImplementedYet, ServiceUnavailable
from switchboard_common.models import model_allowed

from switchboard_router import strategies
from switchboard_router.config import Config, deployment_name
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec, Target, Tokens
from switchboard_router.prices import Prices, price_key
from switchboard_router.providers.base import Provider
from switchboard_router.stats import DeploymentStats
from switchboard_router.strategies import Choice, PriceOf, Strategy

_log = structlog.get_logger("routing")
# The reference request cost_optimized compares prices on: a million tokens in, a million out.
_REFERENCE_TOKENS = Tokens(prompt=1_000_000, completion=1_000_000)


class ProvidersUnavailable(ServiceUnavailable):
    """Every deployment of the model is open-circuited or cooling down: answered at once."""

    default_code = "all_providers_unavailable"


@dataclass(frozen=True, slots=True)
class TimeoutDefaults:
    total_seconds: float
    read_seconds: float
    connect_seconds: float


@dataclass(slots=True)
class _Route:
    name: str
    wildcard: bool
    deployments: tuple[Deployment, ...]  # enabled ones only, in the file's order
    owned_by: str
    strategy: Strategy
    strategy_name: str
    fallbacks: tuple[str, ...] = ()
    cache: bool = False  # its answers are cached unless a request says otherwise
    error_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by error kind
    by_endpoint: dict[Endpoint, tuple[Deployment, ...]] = field(default_factory=dict)
    targets: dict[Endpoint, tuple[Target, ...]] = field(default_factory=dict)  # exact names only


class Routes:
    def __init__(self, config: Config, providers: Mapping[str, Provider], defaults: TimeoutDefaults,
                 *, created: int, rng: Callable[[], float] = random.random,
                 strategy: str | None = None, prices: Prices | None = None) -> None:
        # ROUTING_STRATEGY (`strategy`) over the file's routing.strategy; a group's own over both.
        self.strategy = strategy or config.routing.strategy
        if self.strategy not in strategies.STRATEGIES:
            raise ValueError(f"unknown routing strategy {self.strategy!r} "
                             f"(known: {', '.join(strategies.STRATEGIES)})")
        self._prices = prices
        self._rng = rng
        self._created = created
        self._exact: dict[str, _Route] = {}
        self._wildcards: dict[str, _Route] = {}  # "openai/*" is kept under "openai"
        self._unavailable: dict[str, str] = {}  # names whose providers are all disabled: why
        self._routes: list[_Route] = []
        # Every name a fallback may be written as -> the names of its group that are not
        # wildcards (a key allowed one of them may be answered by the group: fallback_allowed).
        self._names: dict[str, tuple[str, ...]] = {}
        for model in config.models:
            specs = [config.providers[d.provider] for d in model.deployments]
            enabled = tuple(_deployment(model.name, d, s, defaults, config)
                            for d, s in zip(model.deployments, specs, strict=True) if s.enabled)
            names = [model.name, *model.aliases]
            if not enabled:
                for name in names:
                    self._unavailable[name] = _how_to_enable(specs)
                continue
            name = model.strategy or self.strategy
            _check_knobs(model.name, name, model.deployments)
            route = _Route(name=model.name, wildcard=model.name.endswith("/*"), deployments=enabled,
                           owned_by=config.providers[enabled[0].provider].owned_by,
                           strategy=strategies.STRATEGIES[name](rng), strategy_name=name,
                           fallbacks=tuple(model.fallbacks), cache=model.cache, error_fallbacks={
                               CONTEXT_WINDOW: tuple(model.context_window_fallbacks),
                               CONTENT_POLICY: tuple(model.content_policy_fallbacks)})
            for endpoint in Endpoint:
                route.by_endpoint[endpoint] = tuple(
                    d for d in enabled if endpoint in providers[d.provider].endpoints)
                route.targets[endpoint] = tuple(
                    Target(d, d.model or model.name) for d in route.by_endpoint[endpoint])
            self._routes.append(route)
            exact = tuple(n for n in names if not n.endswith("/*"))
            for name in exact:
                self._names[name] = exact
            for name in names:
                if name.endswith("/*"):
                    self._wildcards[name[:-2]] = route
                else:
                    self._exact[name] = route
        self._listing = orjson.dumps({"object": "list", "data": self._models()})

    def plan(self, model: str, endpoint: Endpoint, *, stream: bool = False,
             price_of: PriceOf | None = None) -> Sequence[Target]:
        """The healthy deployments to try for this request, in the group's strategy's order.
        Raises ProvidersUnavailable (503) when none is healthy, rather than waiting on them."""
        route, targets = self._targets(model, endpoint)
        healthy = [t for t in targets if t.deployment.stats.healthy]
        if not healthy:
            raise ProvidersUnavailable(
                f"Every deployment of the model '{model}' is failing or rate limited right now "
                "(circuit open or cooling down); retry shortly.")
        if len(healthy) == 1:
            return healthy
        return route.strategy.order(healthy, Choice(stream=stream, price_of=price_of or _unpriced))

    async def choose(self, model: str, endpoint: Endpoint, *, stream: bool,
                     allowed: frozenset[str] = frozenset()) -> Sequence[Target]:
        """The model's plan, then its fallbacks' that the key may use (`allowed`: its
        allowed_models; each in its own strategy's order). Raises ProvidersUnavailable only when
        none of them has a healthy deployment."""
        route, _ = self._resolve(model)
        fallbacks = self._permitted(route.fallbacks, allowed)
        if not fallbacks:
            return await self._choose(model, endpoint, stream=stream)
        return await self._chain(model, fallbacks, endpoint, stream=stream)

    def error_fallbacks(self, model: str, endpoint: Endpoint, exc: ApiError, *, stream: bool,
                        allowed: frozenset[str] = frozenset()) -> Sequence[Target]:
        """Where to send a request that failed with this error: a larger model for a prompt too
        long, another provider for a content policy's refusal; empty when none is configured or
        the key may use none of them (the client then hears the error itself)."""
        kind = error_kind(exc)
        if kind is None:
            return []
        try:
            route, _ = self._resolve(model)
        except ApiError:
            return []
        out: list[Target] = []
        for name in self._permitted(route.error_fallbacks.get(kind, ()), allowed):
            try:
                out += self.plan(name, endpoint, stream=stream)
            except ApiError:
                continue
        return out

    def reachable(self, model: str, endpoint: Endpoint,
                  allowed: frozenset[str] = frozenset()) -> list[Target]:
        """Every deployment a request for the model may be sent to, healthy or not (a retry
        replans, and a breaker may close meanwhile): its own, then those of its fallbacks and
        error fallbacks that the key may use, each once. A budget reserves at the dearest."""
        route, _ = self._resolve(model)
        out = list(self._targets(model, endpoint)[1])
        names = (*route.fallbacks, *(n for kind in route.error_fallbacks.values() for n in kind))
        if not names:
            return out
        seen = {id(t.deployment) for t in out}
        for name in self._permitted(names, allowed):
            try:
                targets = self._targets(name, endpoint)[1]
            except ApiError:
                continue
            for t in targets:
                if id(t.deployment) not in seen:
                    seen.add(id(t.deployment))
                    out.append(t)
        return out

    def fallback_allowed(self, allowed: frozenset[str], name: str) -> bool:
        """Whether a key whose allowed_models are `allowed` may be answered by the fallback
        `name`: one of its group's names (the model or an alias) is allowed, as a request for
        that name would be. A key limited to some models is never answered by another."""
        return not allowed or any(model_allowed(allowed, n) for n in self._names.get(name, (name,)))

    def _permitted(self, names: Sequence[str], allowed: frozenset[str]) -> Sequence[str]:
        if not allowed or not names:
            return names
        return [n for n in names if self.fallback_allowed(allowed, n)]

    async def _chain(self, model: str, fallbacks: Sequence[str], endpoint: Endpoint, *,
                     stream: bool) -> Sequence[Target]:
        out: list[Target] = []
        seen: set[int] = set()
        first: ApiError | None = None
        for name in (model, *fallbacks):
            try:
                targets = await self._choose(name, endpoint, stream=stream)
            except (ProvidersUnavailable, NotImplementedYet) as exc:
                first = first or exc
                continue
            for t in targets:  # a deployment shared by two groups is tried once
                if id(t.deployment) not in seen:
                    seen.add(id(t.deployment))
                    out.append(t)
        if not out:
            assert first is not None
            raise first
        return out

    async def _choose(self, model: str, endpoint: Endpoint, *, stream: bool) -> Sequence[Target]:
        """plan(), with the prices cost_optimized needs fetched first (once per price ttl)."""
        route, targets = self._targets(model, endpoint)
        if not route.strategy.needs_prices or self._prices is None or len(targets) < 2:
            return self.plan(model, endpoint, stream=stream)
        prices = self._prices
        keys = [price_key(model, t) for t in targets]
        if any(prices.cached(k) is None for k in keys):
            try:
                await prices.rates(keys)
            except ApiError as exc:  # billing away: unpriced, spread by weight
                _log.warning("prices unavailable; cost_optimized spreads by weight", error=exc.code)

        def price_of(target: Target) -> int | None:
            rates = prices.cached(price_key(model, target))
            return rates.cost(_REFERENCE_TOKENS) if rates is not None and rates.known else None

        return self.plan(model, endpoint, stream=stream, price_of=price_of)

    def check(self, model: str, endpoint: Endpoint) -> None:
        """Raises as plan() would for a model nobody serves, whatever its deployments' health
        (for what calls no provider, such as a local token count)."""
        self._targets(model, endpoint)

    def cache_group(self, model: str) -> tuple[str, bool]:
        """The name the response cache keys a model by (its group's, so an alias shares its
        group's answers; a wildcard's model as asked) and whether the group caches by default."""
        route, rest = self._resolve(model)
        return (route.name if rest is None else model), route.cache

    def targets(self, model: str, endpoint: Endpoint) -> Sequence[Target]:
        """Every deployment of the model for this endpoint, in the file's order, healthy or not
        (what a look at its providers needs, without moving any strategy's state)."""
        return self._targets(model, endpoint)[1]

    def strategy_of(self, model: str) -> str:
        return self._resolve(model)[0].strategy_name

    def _targets(self, model: str, endpoint: Endpoint) -> tuple[_Route, Sequence[Target]]:
        route, rest = self._resolve(model)
        if rest is None:
            targets: Sequence[Target] = route.targets[endpoint]
        else:
            targets = [Target(d, d.model or rest) for d in route.by_endpoint[endpoint]]
        if not targets:
            raise NotImplementedYet(f"The model '{model}' cannot serve {endpoint.value} on this "
                                    "gateway: none of its providers supports it.")
        return route, targets

    def describe(self, model: str) -> dict[str, Any]:
        route, _ = self._resolve(model)
        return {"id": model, "object": "model", "created": self._created, "owned_by": route.owned_by}

    def listing(self, allowed: frozenset[str] = frozenset()) -> bytes:
        """OpenAI's model list: every name served right now (wildcards cannot be listed)."""
        if not allowed:
            return self._listing
        return orjson.dumps({"object": "list",
                             "data": [m for m in self._models()
                                      if model_allowed(allowed, m["id"])]})

    def deployments(self, model: str = "") -> list[Deployment]:
        return [d for r in self._routes if not model or r.name == model for d in r.deployments]

    def _resolve(self, model: str) -> tuple[_Route, str | None]:
        route = self._exact.get(model)
        if route is not None:
            return route, None
        prefix, slash, rest = model.partition("/")
        if slash and rest:
            route = self._wildcards.get(prefix)
            if route is not None:
                return route, rest
        how = self._unavailable.get(model) or self._unavailable.get(f"{prefix}/*" if slash else "")
        raise NotFound(f"The model '{model}' is not available on this gateway right now: {how}."
                       if how else f"The model '{model}' does not exist or is not served by this gateway.",
                       param="model", code="model_not_found")

    def _models(self) -> list[dict[str, Any]]:
        return [{"id": name, "object": "model", "created": self._created, "owned_by": route.owned_by}
                for name, route in self._exact.items()]


def _deployment(route: str, d, spec: ProviderSpec, defaults: TimeoutDefaults,
                config: Config) -> Deployment:
    return Deployment(
        route=route, name=deployment_name(d, route), provider=d.provider, model=d.model, weight=d.weight,
        priority=d.priority,
        timeout_seconds=d.timeout_seconds or spec.timeout_seconds or defaults.total_seconds,
        read_timeout_seconds=d.read_timeout_seconds or spec.read_timeout_seconds or defaults.read_seconds,
        connect_timeout_seconds=(d.connect_timeout_seconds or spec.connect_timeout_seconds
                                 or defaults.connect_seconds),
        first_byte_timeout_seconds=(d.first_byte_timeout_seconds or spec.first_byte_timeout_seconds
                                    or math.inf),
        stats=DeploymentStats(config.routing.failure_threshold, config.routing.cooldown_seconds,
                              throttle_seconds=config.routing.throttle_cooldown_seconds,
                              max_throttle_seconds=config.routing.max_throttle_cooldown_seconds,
                              failure_rate=config.routing.failure_rate_threshold,
                              failure_window=config.routing.failure_rate_window,
                              failure_min_calls=config.routing.failure_rate_min_calls))


CONTEXT_WINDOW, CONTENT_POLICY = "context_window", "content_policy"
# Providers' error codes for each kind (OpenAI, Azure; the codecs map others' onto these).
_ERROR_KINDS = {
    "context_length_exceeded": CONTEXT_WINDOW, "context_window_exceeded": CONTEXT_WINDOW,
    "content_policy_violation": CONTENT_POLICY, "content_filter": CONTENT_POLICY,
}


def error_kind(exc: ApiError) -> str | None:
    return _ERROR_KINDS.get(exc.code or "")


def _check_knobs(model: str, strategy: str, deployments: Sequence[Any]) -> None:
    """A deployment's `priority` is read by failover alone, and its `weight` by every other
    strategy: one set where its group's strategy would ignore it stops the start."""
    for d in deployments:
        if strategy != "failover" and d.priority:
            raise ValueError(f"model {model!r}: `priority` is read by the failover strategy only, "
                             f"and this model's is {strategy}")
        if strategy == "failover" and d.weight != 1:
            raise ValueError(f"model {model!r}: `weight` is not read by the failover strategy "
                             "(order it with `priority`)")


def _unpriced(target: Target) -> int | None:
    return None


def _how_to_enable(specs: list[ProviderSpec]) -> str:
    names = dict.fromkeys(s.name for s in specs)
    by_name = {s.name: s for s in specs}
    return "its provider has no API key (" + "; ".join(
        f"set {by_name[n].key_env} to enable provider '{n}'" if by_name[n].key_env
        else f"give provider '{n}' an api_key in switchboard.yaml" for n in names) + ")"
