"""The dashboard's settings, read once from the environment (prefix SWITCHBOARD_DASHBOARD_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict


class DashboardSettings(BaseSettings):
    """Only what the dashboard reads: it holds no key of its own and stores nothing on disk."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_DASHBOARD_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(default=8070, ge=1, le=65535)
    # The edge, as the dashboard calls the admin API (in Kubernetes the edge's Service).
    edge_url: str = "http://127.0.0.1:8080"
    # A session ends this long after login, whatever happens in between.
    session_ttl_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # Sessions kept at once (a login past it drops the oldest): memory stays bounded.
    max_sessions: int = Field(default=10000, ge=1)
    api_timeout_seconds: float = Field(default=15.0, gt=0)
    # After SIGTERM: how long requests in flight may take to finish.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # The suite-wide SWITCHBOARD_LOG_LEVEL / _LOG_FORMAT apply here too, as in every service.
        suite_wide = EnvSettingsSource(settings_cls, env_prefix="SWITCHBOARD_")
        return init_settings, env_settings, suite_wide, file_secret_settings
