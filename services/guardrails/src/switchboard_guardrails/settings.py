"""Guardrails settings, read once from the environment (prefix SWITCHBOARD_GUARDRAILS_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard_common.settings import CommonSettings


class GuardrailsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_GUARDRAILS_", frozen=True, extra="ignore")

    grpc_port: int = 50054
