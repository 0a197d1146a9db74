"""Settings every service shares, read once from the environment (prefix SWITCHBOARD_)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

import structlog
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

SUITE_PREFIX = "SWITCHBOARD_"
SERVICES = ("router", "auth", "billing", "guardrails", "memory")
# Prefixes read by others than the services: edge/render.py and the launcher (EDGE), the tests,
# the dashboard (services/dashboard, an HTTP process that reads its own settings).
OTHER_READERS = ("SWITCHBOARD_EDGE_", "SWITCHBOARD_TEST_", "SWITCHBOARD_DASHBOARD_")
# The one list of variables that a service may see without reading them itself: suite-wide names
# a neighbour reads, and what the launcher and deploy/ set. Every service's own fields, with its
# prefix or the suite-wide one, are known without being listed.
KNOWN_ELSEWHERE = frozenset({
    "SWITCHBOARD_MASTER_KEY",  # auth; the launcher too
    "SWITCHBOARD_CONFIG_PATH",  # the router; the launcher too
    "SWITCHBOARD_DATABASE_URL",  # auth, billing and memory
    # Suite-wide names of the router's and billing's fields that start with auth's prefix.
    "SWITCHBOARD_AUTH_TARGET", "SWITCHBOARD_AUTH_TIMEOUT_SECONDS",
    "SWITCHBOARD_AUTH_CACHE_SECONDS",
    # Suite-wide names of the router's fields that start with guardrails' and memory's prefixes.
    "SWITCHBOARD_GUARDRAILS_TARGET", "SWITCHBOARD_GUARDRAILS_TIMEOUT_SECONDS",
    "SWITCHBOARD_MEMORY_TARGET", "SWITCHBOARD_MEMORY_TIMEOUT_SECONDS",
    # Set by the launcher and the manifests for neighbours the router will call, and for quota
    # leases, ahead of the code that reads them (deploy/README.md).
    "SWITCHBOARD_BILLING_TARGET",
    "SWITCHBOARD_ROUTER_BILLING_TARGET", "SWITCHBOARD_ROUTER_GUARDRAILS_TARGET",
    "SWITCHBOARD_ROUTER_MEMORY_TARGET", "SWITCHBOARD_ROUTER_REPLICA_ID",
    # The router's and auth's deadline on calls to billing (budget leases, prices, SetBudget).
    "SWITCHBOARD_BILLING_TIMEOUT_SECONDS",
    # The key stored provider credentials are sealed under: read by the router's sealing.py and
    # the CLI, the same name on every replica (not a settings field, so never in a repr).
    "SWITCHBOARD_CREDENTIALS_KEY", "SWITCHBOARD_CREDENTIALS_KEY_FILE",
    "SWITCHBOARD_CREDENTIALS_PREVIOUS_KEYS",
})


class CommonSettings(BaseSettings):
    """Base of each service's frozen settings; a service subclass sets its own env prefix.

    Shared values (NATS, data directory, log level) are read without the service prefix as well,
    so one `SWITCHBOARD_NATS_URL` configures the whole suite.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    grpc_port: int = 0
    metrics_port: int = 0  # 0: no Prometheus endpoint
    log_level: str = "INFO"
    log_format: str = "json"  # "json" or "console"
    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: Path = Path(".data")
    shutdown_grace_seconds: float = 5.0
    # After SIGTERM: NOT_SERVING but still accepting, longer than the edge takes to notice
    # (edge/render.py: health_detection_seconds).
    shutdown_lame_duck_seconds: float = 5.0

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # SWITCHBOARD_<SERVICE>_X wins over the suite-wide SWITCHBOARD_X (e.g. SWITCHBOARD_NATS_URL).
        suite_wide = EnvSettingsSource(settings_cls, env_prefix="SWITCHBOARD_")
        return init_settings, env_settings, suite_wide, file_secret_settings


class TelemetrySettings(BaseSettings):
    """The standard OpenTelemetry variables this suite reads itself (OTEL_*; the OTLP exporter
    reads its endpoint, headers and timeouts, and the SDK its sampler, as the spec says). Traces
    are off unless OTEL_TRACES_EXPORTER names an exporter; a protocol whose exporter is not
    installed is refused rather than ignored."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", frozen=True, extra="ignore")

    sdk_disabled: bool = False
    traces_exporter: Literal["none", "otlp", "console"] = "none"
    exporter_otlp_protocol: Literal["grpc"] = "grpc"
    exporter_otlp_traces_protocol: Literal["grpc"] = "grpc"

    @property
    def tracing(self) -> bool:
        return not self.sdk_disabled and self.traces_exporter != "none"


S = TypeVar("S", bound=CommonSettings)
B = TypeVar("B", bound=BaseSettings)


def load(settings_cls: type[B]) -> B:
    """Build settings or stop the process with a message naming the bad variable."""
    from pydantic import ValidationError

    try:
        return settings_cls()
    except ValidationError as exc:
        prefix = settings_cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"invalid configuration: {problems}") from None


def unknown_variables(settings_cls: type[CommonSettings],
                      environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each SWITCHBOARD_* variable this service should read but does not know, with the closest
    known name; another service's own prefix is left for that service to judge."""
    prefix = settings_cls.model_config.get("env_prefix", "").upper()
    fields = [name.upper() for name in settings_cls.model_fields]
    mine = {prefix + f for f in fields} | {SUITE_PREFIX + f for f in fields}
    others = tuple(f"{SUITE_PREFIX}{s.upper()}_" for s in SERVICES
                   if f"{SUITE_PREFIX}{s.upper()}_" != prefix) + OTHER_READERS
    unknown = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings matches names case-insensitively
        if (not upper.startswith(SUITE_PREFIX) or upper in mine or upper in KNOWN_ELSEWHERE
                or upper.startswith(others)):
            continue
        unknown.append((name, _closest(upper, mine)))
    return unknown


def _closest(name: str, known: set[str]) -> str | None:
    # Compared without the shared SWITCHBOARD_, which would make every name look alike.
    tails = {k[len(SUITE_PREFIX):]: k for k in known}
    close = difflib.get_close_matches(name[len(SUITE_PREFIX):], sorted(tails), n=1, cutoff=0.8)
    return tails[close[0]] if close else None


def warn_unknown_variables(settings_cls: type[CommonSettings],
                           environ: Mapping[str, str] | None = None) -> None:
    """Log one warning per unknown variable: a typo must not pass silently (call after logging
    is configured)."""
    log = structlog.get_logger("settings")
    for name, close in unknown_variables(settings_cls, os.environ if environ is None else environ):
        hint = f"; did you mean {close}?" if close else ""
        log.warning(f"unknown environment variable {name} is ignored{hint}", variable=name,
                    closest=close)
