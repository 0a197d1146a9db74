"""Memory settings, read once from the environment (prefix SWITCHBOARD_MEMORY_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from switchboard_common.settings import CommonSettings

DATABASE_FILE = "memory.db"


class MemorySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_MEMORY_", frozen=True, extra="ignore")

    grpc_port: int = 50055
    # sqlite:///<data_dir>/memory.db unless set; postgresql://... in production. Sessions and
    # collections will live here (nothing is stored yet: see the README's "Not built yet").
    database_url: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_database_url(cls, values: Any) -> Any:
        # Derived before validation because the settings are frozen; the data directory may come
        # from the environment, so the default cannot be a constant.
        if isinstance(values, dict) and not values.get("database_url"):
            data_dir = values.get("data_dir") or cls.model_fields["data_dir"].default
            values = {**values, "database_url": f"sqlite:///{Path(data_dir) / DATABASE_FILE}"}
        return values
