"""Guardrails settings, read once from the environment (SWITCHBOARD_GUARDRAILS_X or SWITCHBOARD_X)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from switchboard_common.settings import CommonSettings


class GuardrailsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_GUARDRAILS_", frozen=True, extra="ignore")

    grpc_port: int = 50054
    database_url: str = ""  # empty: sqlite:///<data_dir>/guardrails.db

    # Who may manage policies: auth's Authorize answers for the caller's key.
    auth_target: str = "127.0.0.1:50052"
    auth_timeout_seconds: float = 2.0
    auth_cache_seconds: float = 30.0

    # How long a replica keeps a compiled policy; another replica's change shows within this.
    policy_cache_seconds: float = 5.0
    # Regions whose national phone numbers (no + or 00) the pii check knows, comma-separated.
    phone_regions: str = "US"

    # OpenAI's /v1/moderations through the gateway (or any OpenAI-compatible base URL, e.g.
    # http://127.0.0.1:8080/v1 with a Switchboard key). Empty: moderation rules can only warn,
    # from keyword lists.
    moderation_base_url: str = ""
    moderation_api_key: SecretStr = SecretStr("")
    moderation_model: str = "omni-moderation-latest"
    moderation_timeout_seconds: float = 5.0

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'guardrails.db'}"

    @property
    def phone_region_list(self) -> tuple[str, ...]:
        return tuple(r.strip().upper() for r in self.phone_regions.split(",") if r.strip())
