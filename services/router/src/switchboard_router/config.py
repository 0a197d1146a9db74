"""switchboard.yaml: `${VAR}` expansion, validation with errors that name the field path, defaults.

Read once at start. Anything wrong stops the process with every problem listed, each as
`models[2].deployments[0].provider: unknown provider 'opnai' (known: local, openai)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)
from pydantic_core import ErrorDetails
from switchboard_common.yaml_env import expand

from switchboard_router import config_oauth, providers
from switchboard_router.cache.config import CacheConfig
from switchboard_router.config_schema import (
    DeploymentConfig,
    FileConfig,
    ModelConfig,
    ProviderConfig,
    RoutingConfig,
)
from switchboard_router.catalog import VENDORS, Vendor
from switchboard_router.domain import KeySpec, ProviderSpec

_NAMES = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_POLICY_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
DEFAULT_AWS_REGION = "us-east-1"  # as the AWS SDKs' examples; a deployment names its own


class ConfigError(Exception):
    """switchboard.yaml is unusable; the message lists every problem with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" if path else f"  {msg}" for path, msg in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


NOT_SUPPORTED_YET = {
    "budgets": "budgets in switchboard.yaml (set them with PUT /api/billing/budget)",
}


@dataclass(frozen=True, slots=True)
class Config:
    providers: dict[str, ProviderSpec]
    models: list[ModelConfig]
    routing: RoutingConfig
    moderation_model: str
    default_guardrail_policy_ids: tuple[str, ...] = ()
    store_responses: bool = True  # responses.store
    source: str = ""
    cache: CacheConfig = dataclasses.field(default_factory=CacheConfig)


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
    expanded = expand(raw, env, "", problems)
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
    models = _own_credentials(file, raw, specs, env, problems)
    if problems:
        raise ConfigError(source, problems)
    for i, policy_id in enumerate(file.guardrails.default_policy_ids):
        if not _POLICY_ID.fullmatch(policy_id):
            problems.append((f"guardrails.default_policy_ids[{i}]",
                             f"{policy_id!r} is not a policy id (such as 'pol_...')"))
    if problems:
        raise ConfigError(source, problems)
    _add_presets(specs, models, env)
    return Config(providers={n: s for n, s in specs.items() if s is not None}, models=models,
                  routing=file.routing, moderation_model=file.moderation_model,
                  default_guardrail_policy_ids=tuple(dict.fromkeys(file.guardrails.default_policy_ids)),
                  store_responses=file.responses.store, source=source, cache=file.cache)


def _add_presets(specs: dict[str, ProviderSpec | None], models: list[ModelConfig],
                 env: Mapping[str, str]) -> None:
    """Catalog presets the file does not name, enabled by their credentials in the environment
    (keyless servers: by their `<VENDOR>_BASE_URL`), with `<vendor>/<model>` routed to them and
    the preset's known models listed. Without credentials they are kept disabled, so that asking
    for `<vendor>/<model>` says which variable enables it."""
    taken = {n for m in models for n in (m.name, *m.aliases)}
    for name, vendor in VENDORS.items():
        adapter = providers.ADAPTERS[vendor.type]
        if name in specs or adapter.build is None:
            continue
        if not vendor.key_env and not env.get(vendor.base_url_env):
            continue  # a keyless server runs only where its URL says
        if not vendor.base_url and not env.get(vendor.base_url_env):
            continue  # Azure: its endpoint is the customer's own
        problems: list[tuple[str, str]] = []
        spec = _provider(name, ProviderConfig(vendor=name), {}, env, problems)
        if spec is None or problems:
            continue
        specs[name] = spec
        named = env.get(vendor.models_env, "") if vendor.models_env else ""
        for model in (*vendor.models, *(m.strip() for m in named.split(",") if m.strip()), "*"):
            route = f"{name}/{model}"
            if route not in taken:
                models.append(ModelConfig(name=route, deployments=[DeploymentConfig(
                    provider=name, model=None if model == "*" else model)]))
                taken.add(route)


def _provider(name: str, p: ProviderConfig, raw: Any, env: Mapping[str, str],
              problems: list[tuple[str, str]], at: str = "") -> ProviderSpec | None:
    at = at or f"providers.{name}"
    vendor = VENDORS.get(p.vendor) if p.vendor else None
    if p.vendor and vendor is None:
        problems.append((f"{at}.vendor", f"unknown vendor {p.vendor!r} (known: {', '.join(sorted(VENDORS))})"))
        return None
    kind = p.type or (vendor.type if vendor else None)
    if kind is None:
        problems.append((f"{at}.type", f"required (one of: {_known_types()})"))
        return None
    adapter = providers.ADAPTERS.get(kind)
    if adapter is None:
        problems.append((f"{at}.type", f"unknown provider type {kind!r} "
                                        f"(known: {_known_types()})"))
        return None
    if adapter.build is None:
        problems.append((f"{at}.vendor" if p.vendor and not p.type else f"{at}.type",
                         f"not supported yet: provider type {kind!r}: {adapter.not_built}"))
        return None
    if p.api_version is not None and not adapter.reads_api_version:
        readers = ", ".join(k for k, a in providers.ADAPTERS.items() if a.reads_api_version)
        problems.append((f"{at}.api_version", f"provider type {kind!r} has no api_version (only "
                                              f"{readers} read it)"))
        return None
    if p.api_version is not None and adapter.api_versions and p.api_version not in adapter.api_versions:
        problems.append((f"{at}.api_version", f"{p.api_version!r} is not an api_version of provider type "
                                              f"{kind!r} (one of: {', '.join(adapter.api_versions)})"))
        return None
    for field in ("project", "location"):
        if getattr(p, field) is not None and not adapter.reads_project:
            problems.append((f"{at}.{field}", f"provider type {kind!r} has no {field} (only vertex reads it)"))
            return None
    if p.region is not None and not adapter.reads_region:
        problems.append((f"{at}.region", f"provider type {kind!r} has no region (only bedrock reads it)"))
        return None
    region = (p.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_AWS_REGION
              if adapter.reads_region else None)
    base_url = p.base_url or (env.get(vendor.base_url_env) or vendor.base_url if vendor else "")
    if region is not None:
        base_url = base_url.replace("{region}", region)
    if adapter.remote and not base_url.startswith(("http://", "https://")):
        problems.append((f"{at}.base_url", "required: an http:// or https:// URL"
                         if not base_url else f"not an http(s) URL: {base_url!r}"))
        return None
    if p.api_keys is not None and not adapter.remote:
        problems.append((f"{at}.api_keys", f"provider type {kind!r} takes no key"))
        return None
    before = len(problems)
    keys = _api_keys(at, p, raw, problems)
    oauth = config_oauth.spec(at, p.oauth, kind, p, adapter.takes_oauth, problems)
    if len(problems) > before:
        return None
    if oauth is not None:
        keys = ()  # its token sets come from /api/credentials alone
    raw_key = raw.get("api_key") if isinstance(raw, dict) else None
    if p.api_keys is not None:
        raw_key = " ".join(str(k.get("key") if isinstance(k, dict) else k) for k in raw["api_keys"])
    referenced = _NAMES.findall(raw_key) if isinstance(raw_key, str) else []
    key_env = referenced[0] if referenced else (vendor.key_env if vendor and raw_key is None else None)
    api_key = p.api_key if p.api_key is not None else (_vendor_key(vendor, env) if vendor else "")
    if p.api_keys is not None or oauth is not None:
        api_key = keys[0].secret if keys else ""
    stored_only = p.api_keys == [] or oauth is not None  # its keys come from /api/credentials alone
    needs_key = p.api_key_required if p.api_key_required is not None else (
        adapter.needs_key and not (vendor is not None and vendor.key_env is None))
    return ProviderSpec(
        name=name, type=kind, base_url=base_url.rstrip("/"), api_key=api_key, headers=dict(p.headers),
        stream_usage=p.stream_usage if p.stream_usage is not None else (vendor.stream_usage if vendor else True),
        owned_by=p.owned_by or (vendor.owned_by if vendor else adapter.owned_by or name),
        enabled=bool(api_key) or not needs_key or stored_only or any(
            all(env.get(v) for v in group) for group in adapter.ambient_credentials),
        key_env=key_env, region=region,
        timeout_seconds=p.timeout_seconds, read_timeout_seconds=p.read_timeout_seconds,
        connect_timeout_seconds=p.connect_timeout_seconds,
        first_byte_timeout_seconds=p.first_byte_timeout_seconds,
        api_version=p.api_version or (
            (vendor.api_version_env and env.get(vendor.api_version_env)) or vendor.api_version
            if vendor else None),
        auth_header=p.auth_header or (vendor.auth_header if vendor else None),
        project=p.project or (env.get(vendor.project_env) or None if vendor and vendor.project_env else None),
        location=p.location or (env.get(vendor.location_env) or None if vendor and vendor.location_env else None),
        api_keys=keys, key_selection=p.key_selection or "round_robin", oauth=oauth)


CREDENTIALS = ("api_key", "api_keys", "key_selection", "oauth")


def _own_credentials(file: FileConfig, raw: Any, specs: dict[str, ProviderSpec | None],
                     env: Mapping[str, str], problems: list[tuple[str, str]]) -> list[ModelConfig]:
    """The models, each deployment with credentials of its own served by a provider of its own:
    its provider's entry with those credentials instead of the provider's, named
    `<provider>@<deployment name>` (its key ring, /api/credentials and stats go by that name;
    usage and prices by the deployment's name, as for any deployment). Checked as a provider's
    credentials are, with errors naming the deployment's fields."""
    models: list[ModelConfig] = []
    taken: dict[str, str] = {}
    for i, model in enumerate(file.models):
        deployments = []
        for j, dep in enumerate(model.deployments):
            if all(getattr(dep, f) is None for f in CREDENTIALS) or specs.get(dep.provider) is None:
                deployments.append(dep)
                continue
            at = f"models[{i}].deployments[{j}]"
            if dep.name is None:
                problems.append((f"{at}.name", "required for a deployment with credentials of its "
                                               "own (they are known as '<provider>@<name>')"))
                continue
            name = f"{dep.provider}@{dep.name}"
            if name in taken:
                problems.append((f"{at}.name", f"{name!r} already has credentials of its own at "
                                               f"{taken[name]}: name this deployment otherwise"))
                continue
            taken[name] = at
            raw_dep = raw["models"][i]["deployments"][j]
            own_raw = {k: v for k, v in (raw["providers"][dep.provider] or {}).items()
                       if k not in CREDENTIALS} | {k: raw_dep[k] for k in CREDENTIALS if k in raw_dep}
            own = file.providers[dep.provider].model_copy(
                update={f: getattr(dep, f) for f in CREDENTIALS})
            specs[name] = _provider(name, own, own_raw, env, problems, at=at)
            deployments.append(dep.model_copy(update={"provider": name}))
        models.append(model.model_copy(update={"deployments": deployments}))
    return models


def _vendor_key(vendor: Vendor, env: Mapping[str, str]) -> str:
    """The first of the vendor's key variables that is set (its SDK's order of precedence)."""
    names = (*vendor.alt_key_envs, vendor.key_env) if vendor.key_env else ()
    return next((env[n] for n in names if env.get(n)), "")


def _api_keys(at: str, p: ProviderConfig, raw: Any, problems: list[tuple[str, str]]
              ) -> tuple[KeySpec, ...] | None:
    """The provider's `api_keys` (empty ones, from an unset `${VAR:-}`, left out); None when it
    has none or they are wrong (then `problems` says so). Problems name an entry by its index,
    never by the key."""
    if p.api_keys is None:
        if p.key_selection is not None:
            problems.append((f"{at}.key_selection", "only for a provider with api_keys"))
            return None
        return None
    if p.api_key is not None:
        problems.append((f"{at}.api_keys", "give either api_key or api_keys, not both"))
        return None
    keys: list[KeySpec] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(p.api_keys):
        secret = entry.key.strip()
        if not secret:
            continue
        if secret in seen:
            problems.append((f"{at}.api_keys[{i}]", f"the same key as api_keys[{seen[secret]}]"))
            return None
        seen[secret] = i
        keys.append(KeySpec(secret=secret, weight=entry.weight, rpm=entry.rpm))
    return tuple(keys)


def _known_types() -> str:
    return ", ".join(sorted(k for k, a in providers.ADAPTERS.items() if a.build is not None))


def _check_models(file: FileConfig, specs: dict[str, ProviderSpec | None],
                  problems: list[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    every = {n for m in file.models for n in (m.name, *m.aliases)}
    for i, model in enumerate(file.models):
        for j, name in enumerate([model.name, *model.aliases]):
            at = f"models[{i}].name" if j == 0 else f"models[{i}].aliases[{j - 1}]"
            if "*" in name and (not name.endswith("/*") or name.count("*") != 1 or len(name) < 3):
                problems.append((at, f"{name!r}: a wildcard must be written '<prefix>/*'"))
            if name in seen:
                problems.append((at, f"{name!r} is already defined at {seen[name]}"))
            seen.setdefault(name, at)
        for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for j, name in enumerate(getattr(model, field)):
                if name in (model.name, *model.aliases):
                    problems.append((f"models[{i}].{field}[{j}]", f"{name!r} is this model itself"))
                elif name not in every or "*" in name:
                    problems.append((f"models[{i}].{field}[{j}]",
                                     f"{name!r} is not a model (or alias) defined in this file"))
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


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        if len(error["loc"]) == 1 and error["loc"][0] in NOT_SUPPORTED_YET:
            return (f"not supported yet: {NOT_SUPPORTED_YET[error['loc'][0]]} is not built, so "
                    "nothing would apply this section; remove it")
        return "unknown field"
    return error["msg"]
