"""Settings every service shares, read once from the environment (prefix SWITCHBOARD_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict


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

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # SWITCHBOARD_<SERVICE>_X wins over the suite-wide SWITCHBOARD_X (e.g. SWITCHBOARD_NATS_URL).
        suite_wide = EnvSettingsSource(settings_cls, env_prefix="SWITCHBOARD_")
        return init_settings, env_settings, suite_wide, file_secret_settings


def load(settings_cls: type[CommonSettings]) -> CommonSettings:
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
