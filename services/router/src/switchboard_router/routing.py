"""Model names to deployments: dict lookups built once from switchboard.yaml, and the order to try them."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from switchboard_common.errors import NotFound, NotImplementedYet

from switchboard_router.config import Config, ProviderSpec, deployment_name
from switchboard_router.domain import Deployment, Endpoint, Target
from switchboard_router.providers.base import Provider
from switchboard_router.stats import DeploymentStats


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
    by_endpoint: dict[Endpoint, tuple[Deployment, ...]] = field(default_factory=dict)
    targets: dict[Endpoint, tuple[Target, ...]] = field(default_factory=dict)  # exact names only


class Routes:
    def __init__(self, config: Config, providers: Mapping[str, Provider], defaults: TimeoutDefaults,
                 *, created: int, rng: Callable[[], float] = random.random) -> None:
        self.strategy = config.routing.strategy
        self._rng = rng
        self._created = created
        self._exact: dict[str, _Route] = {}
        self._wildcards: dict[str, _Route] = {}  # "openai/*" is kept under "openai"
        self._unavailable: dict[str, str] = {}  # names whose providers are all disabled: why
        self._routes: list[_Route] = []
        for model in config.models:
            specs = [config.providers[d.provider] for d in model.deployments]
            enabled = tuple(_deployment(model.name, d, s, defaults, config)
                            for d, s in zip(model.deployments, specs) if s.enabled)
            names = [model.name, *model.aliases]
            if not enabled:
                for name in names:
                    self._unavailable[name] = _how_to_enable(specs)
                continue
            route = _Route(name=model.name, wildcard=model.name.endswith("/*"), deployments=enabled,
                           owned_by=config.providers[enabled[0].provider].owned_by)
            for endpoint in Endpoint:
                route.by_endpoint[endpoint] = tuple(
                    d for d in enabled if endpoint in providers[d.provider].endpoints)
                route.targets[endpoint] = tuple(
                    Target(d, d.model or model.name) for d in route.by_endpoint[endpoint])
            self._routes.append(route)
            for name in names:
                if name.endswith("/*"):
                    self._wildcards[name[:-2]] = route
                else:
                    self._exact[name] = route
        self._listing = orjson.dumps({"object": "list", "data": self._models()})

    def plan(self, model: str, endpoint: Endpoint) -> Sequence[Target]:
        """The deployments to try for this request, in order: healthy first."""
        route, rest = self._resolve(model)
        if rest is None:
            targets: Sequence[Target] = route.targets[endpoint]
        else:
            targets = [Target(d, d.model or rest) for d in route.by_endpoint[endpoint]]
        if not targets:
            raise NotImplementedYet(f"The model '{model}' cannot serve {endpoint.value} on this "
                                    "gateway: none of its providers supports it.")
        if len(targets) == 1:
            return targets
        if self.strategy == "weighted":
            # Weighted random order without replacement (Efraimidis-Spirakis keys).
            targets = sorted(targets, key=lambda t: self._rng() ** (1.0 / t.deployment.weight),
                             reverse=True)
        healthy = [t for t in targets if t.deployment.stats.healthy]
        return healthy + [t for t in targets if not t.deployment.stats.healthy] \
            if len(healthy) != len(targets) else targets

    def describe(self, model: str) -> dict[str, Any]:
        route, _ = self._resolve(model)
        return {"id": model, "object": "model", "created": self._created, "owned_by": route.owned_by}

    def listing(self, allowed: frozenset[str] = frozenset()) -> bytes:
        """OpenAI's model list: every name served right now (wildcards cannot be listed)."""
        if not allowed:
            return self._listing
        return orjson.dumps({"object": "list",
                             "data": [m for m in self._models() if m["id"] in allowed]})

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
        timeout_seconds=d.timeout_seconds or spec.timeout_seconds or defaults.total_seconds,
        read_timeout_seconds=d.read_timeout_seconds or spec.read_timeout_seconds or defaults.read_seconds,
        connect_timeout_seconds=spec.connect_timeout_seconds or defaults.connect_seconds,
        stats=DeploymentStats(config.routing.failure_threshold, config.routing.cooldown_seconds))


def _how_to_enable(specs: list[ProviderSpec]) -> str:
    names = dict.fromkeys(s.name for s in specs)
    by_name = {s.name: s for s in specs}
    return "its provider has no API key (" + "; ".join(
        f"set {by_name[n].key_env} to enable provider '{n}'" if by_name[n].key_env
        else f"give provider '{n}' an api_key in switchboard.yaml" for n in names) + ")"
