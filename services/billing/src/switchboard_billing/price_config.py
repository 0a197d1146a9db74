"""The `prices` section of switchboard.yaml, which billing reads itself (the router leaves it to
billing): validated strictly at start, with errors that name the field path.

```yaml
prices:
  catalog: genai-prices        # the maintained catalog (default), or "none": only what is below
  models:                      # by the model name the client sent, or the provider's name for it
    llama-3.1-70b: {input: 0.59, output: 0.79}          # USD per million tokens
    text-embedding-local: {input: 0.01}                 # embeddings: input only
  deployments:                 # by deployment label ("<provider>/<model>" or its `name`); wins
    corp-proxy/gpt-4o: {input: 2.25, output: 9, cached_input: 1.125, cache_write: 2.8125}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard_common.yaml_env import expand

# USD per million tokens: exact decimals (YAML's 0.15 is read as written), never below 0.
PerMillion = Decimal


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rate(default: Any = ...) -> Any:
    return Field(default, ge=0, allow_inf_nan=False, decimal_places=9)


class RatesConfig(_Strict):
    input: PerMillion = _rate()
    output: PerMillion = _rate(Decimal(0))
    cached_input: PerMillion | None = _rate(None)  # default: input's price
    cache_write: PerMillion | None = _rate(None)  # default: input's price


class PricesConfig(_Strict):
    catalog: Literal["genai-prices", "none"] = "genai-prices"
    models: dict[str, RatesConfig] = Field(default_factory=dict)
    deployments: dict[str, RatesConfig] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each kind; cached and cache-write tokens are parts of the
    prompt, billed at their own rate."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal


@dataclass(frozen=True)
class PriceOverrides:
    use_catalog: bool = True
    models: Mapping[str, Rates] = field(default_factory=dict)
    deployments: Mapping[str, Rates] = field(default_factory=dict)


class PriceConfigError(Exception):
    """The prices section is unusable; the message lists every problem with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" if path else f"  {msg}" for path, msg in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


def load(path: Path, env: Mapping[str, str]) -> PriceOverrides:
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PriceConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PriceConfigError(source, [("", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise PriceConfigError(source, [("", "the file must hold a mapping")])
    return parse(raw.get("prices"), env, source=source)


def parse(section: Any, env: Mapping[str, str], *, source: str = "switchboard.yaml") -> PriceOverrides:
    """The `prices` section (None when the file has none: the catalog alone)."""
    if section is None:
        return PriceOverrides()
    problems: list[tuple[str, str]] = []
    expanded = expand(section, env, "prices", problems)
    if problems:
        raise PriceConfigError(source, problems)
    try:
        config = PricesConfig.model_validate(expanded)
    except ValidationError as exc:
        raise PriceConfigError(source, [(_path(("prices", *e["loc"])), _message(e))
                                        for e in exc.errors()]) from None
    return PriceOverrides(use_catalog=config.catalog == "genai-prices",
                          models={name: _rates(r) for name, r in config.models.items()},
                          deployments={name: _rates(r) for name, r in config.deployments.items()})


def _rates(r: RatesConfig) -> Rates:
    return Rates(input=r.input, output=r.output,
                 cached_input=r.input if r.cached_input is None else r.cached_input,
                 cache_write=r.input if r.cache_write is None else r.cache_write)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required (USD per million tokens)"
    return error["msg"]
