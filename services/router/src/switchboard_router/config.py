"""switchboard.yaml: `${VAR}` expansion, validation with errors that name the field path, defaults.

Read once at start. Anything wrong stops the process with every problem listed, each as
`models[2].deployments[0].provider: unknown provider 'opnai' (known: local, openai)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from switchboard_router import providers
from switchboard_router.catalog import VENDORS

# `$$` is a literal `$`; `${VAR}` must be set; `${VAR:-default}` falls back when unset or empty.
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAMES = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


class ConfigError(Exception):
    """switchboard.yaml is unusable; the message lists every problem with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" if path else f"  {msg}" for path, msg in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    type: str | None = None  # the adapter: a key of providers.ADAPTERS; implied by `vendor`
    vendor: str | None = None  # a key of catalog.VENDORS: fills base_url, api_key, quirks
    base_url: str | None = None
    api_key: str | None = None
    api_key_required: bool | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    stream_usage: bool | None = None
    owned_by: str | None = None
    timeout_seconds: PositiveFloat | None = None
    read_timeout_seconds: PositiveFloat | None = None
    connect_timeout_seconds: PositiveFloat | None = None


class DeploymentConfig(_Strict):
    provider: str
    model: str | None = None  # the provider's name for it; default: the name the client asked for
    name: str | None = None  # shown in routing stats and usage; default "<provider>/<model>"
    weight: int = Field(1, ge=1)
    timeout_seconds: PositiveFloat | None = None
    read_timeout_seconds: PositiveFloat | None = None


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    deployments: list[DeploymentConfig] = Field(min_length=1)


class RoutingConfig(_Strict):
    strategy: Literal["ordered", "weighted"] = "ordered"
    failure_threshold: int = Field(3, ge=1)  # consecutive provider failures that bench a deployment
    cooldown_seconds: float = Field(30.0, ge=0)


class FileConfig(_Strict):
    providers: dict[str, ProviderConfig]
    models: list[ModelConfig] = Field(default_factory=list)
    routing: RoutingConfig = RoutingConfig()
    moderation_model: str = "omni-moderation-latest"
    # Sections other services read from the same file; the router ignores them.
    prices: Any = None
    guardrails: Any = None
    budgets: Any = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider with every default applied; `enabled` is False when its key is missing."""

    name: str
    type: str
    base_url: str
    api_key: str
    headers: dict[str, str]
    stream_usage: bool
    owned_by: str
    enabled: bool
    key_env: str | None  # the variable that holds its key, to say how to enable it
    timeout_seconds: float | None
    read_timeout_seconds: float | None
    connect_timeout_seconds: float | None


@dataclass(frozen=True, slots=True)
class Config:
    providers: dict[str, ProviderSpec]
    models: list[ModelConfig]
    routing: RoutingConfig
    moderation_model: str
    source: str = ""


def load(path: Path, env: Mapping[str, str]) -> Config:
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", f"not valid YAML: {exc}")]) from None
    return parse(raw, env, source=source)


def parse(raw: Any, env: Mapping[str, str], *, source: str = "switchboard.yaml") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(source, [("", "the file must hold a mapping with `providers` and `models`")])
    problems: list[tuple[str, str]] = []
    expanded = _expand(raw, env, "", problems)
    if problems:
        raise ConfigError(source, problems)
    try:
        file = FileConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(source, [(_path(e["loc"]), _message(e)) for e in exc.errors()]) from None
    specs = {name: _provider(name, p, raw["providers"][name], env, problems)
             for name, p in file.providers.items()}
    _check_models(file, specs, problems)
    if problems:
        raise ConfigError(source, problems)
    return Config(providers={n: s for n, s in specs.items() if s is not None}, models=file.models,
                  routing=file.routing, moderation_model=file.moderation_model, source=source)


def _expand(node: Any, env: Mapping[str, str], path: str, problems: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):
        def sub(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value:
                return value
            if default is not None:
                return default
            if value is None:
                problems.append((path, f"environment variable {name} is not set "
                                       f"(write ${{{name}:-}} to make it optional)"))
            return ""
        return _VAR.sub(sub, node) if "$" in node else node
    if isinstance(node, dict):
        return {k: _expand(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    return node


def _provider(name: str, p: ProviderConfig, raw: Any, env: Mapping[str, str],
              problems: list[tuple[str, str]]) -> ProviderSpec | None:
    at = f"providers.{name}"
    vendor = VENDORS.get(p.vendor) if p.vendor else None
    if p.vendor and vendor is None:
        problems.append((f"{at}.vendor", f"unknown vendor {p.vendor!r} (known: {', '.join(sorted(VENDORS))})"))
        return None
    kind = p.type or (vendor.type if vendor else None)
    if kind is None:
        problems.append((f"{at}.type", f"required (one of: {', '.join(sorted(providers.ADAPTERS))})"))
        return None
    adapter = providers.ADAPTERS.get(kind)
    if adapter is None:
        problems.append((f"{at}.type", f"unknown provider type {kind!r} "
                                        f"(known: {', '.join(sorted(providers.ADAPTERS))})"))
        return None
    base_url = p.base_url or (env.get(vendor.base_url_env) or vendor.base_url if vendor else "")
    if adapter.remote and not base_url.startswith(("http://", "https://")):
        problems.append((f"{at}.base_url", "required: an http:// or https:// URL"
                         if not base_url else f"not an http(s) URL: {base_url!r}"))
        return None
    raw_key = raw.get("api_key") if isinstance(raw, dict) else None
    referenced = _NAMES.findall(raw_key) if isinstance(raw_key, str) else []
    key_env = referenced[0] if referenced else (vendor.key_env if vendor and raw_key is None else None)
    api_key = p.api_key if p.api_key is not None else (env.get(vendor.key_env, "") if vendor and vendor.key_env else "")
    needs_key = p.api_key_required if p.api_key_required is not None else (
        adapter.needs_key and not (vendor is not None and vendor.key_env is None))
    return ProviderSpec(
        name=name, type=kind, base_url=base_url.rstrip("/"), api_key=api_key, headers=dict(p.headers),
        stream_usage=p.stream_usage if p.stream_usage is not None else (vendor.stream_usage if vendor else True),
        owned_by=p.owned_by or (vendor.owned_by if vendor else adapter.owned_by or name),
        enabled=bool(api_key) or not needs_key, key_env=key_env,
        timeout_seconds=p.timeout_seconds, read_timeout_seconds=p.read_timeout_seconds,
        connect_timeout_seconds=p.connect_timeout_seconds)


def _check_models(file: FileConfig, specs: dict[str, ProviderSpec | None],
                  problems: list[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    for i, model in enumerate(file.models):
        for j, name in enumerate([model.name, *model.aliases]):
            at = f"models[{i}].name" if j == 0 else f"models[{i}].aliases[{j - 1}]"
            if "*" in name and (not name.endswith("/*") or name.count("*") != 1 or len(name) < 3):
                problems.append((at, f"{name!r}: a wildcard must be written '<prefix>/*'"))
            if name in seen:
                problems.append((at, f"{name!r} is already defined at {seen[name]}"))
            seen.setdefault(name, at)
        names: set[str] = set()
        for j, dep in enumerate(model.deployments):
            at = f"models[{i}].deployments[{j}]"
            if dep.provider not in specs:
                problems.append((f"{at}.provider", f"unknown provider {dep.provider!r} "
                                                   f"(known: {', '.join(sorted(specs))})"))
                continue
            label = deployment_name(dep, model.name)
            if label in names:
                problems.append((f"{at}.name", f"{label!r} appears twice in this model; give it a `name`"))
            names.add(label)


def deployment_name(dep: DeploymentConfig, route: str) -> str:
    """The label of a deployment in stats and usage: its `name`, else "<provider>/<model>"."""
    return dep.name or f"{dep.provider}/{dep.model or ('*' if route.endswith('/*') else route)}"


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return error["msg"]
