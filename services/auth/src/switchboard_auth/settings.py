"""Auth's settings, read once from the environment (SWITCHBOARD_AUTH_X or SWITCHBOARD_X)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from switchboard_common import events
from switchboard_common.settings import CommonSettings


class AuthSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_AUTH_", frozen=True, extra="ignore")

    grpc_port: int = 50052
    database_url: str = ""  # empty: sqlite:///<data_dir>/auth.db
    # The admin key everything starts from (SWITCHBOARD_MASTER_KEY); auth won't start without it.
    master_key: SecretStr = SecretStr("")
    # HMAC key for stored key hashes. Empty: generated once into <data_dir>/auth-hash-secret, which
    # only works for replicas sharing that directory; set it explicitly when running several nodes.
    hash_secret: SecretStr = SecretStr("")
    cache_ttl_seconds: int = 60  # how long a router may reuse an Authorize verdict
    keys_changed_subject: str = events.KEYS_CHANGED

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'auth.db'}"
