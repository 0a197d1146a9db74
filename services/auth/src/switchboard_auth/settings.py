"""Auth's settings, read once from the environment (SWITCHBOARD_AUTH_X or SWITCHBOARD_X)."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
    # only works for replicas sharing that directory. Its fingerprint is kept in the database, so
    # a replica with another secret refuses to start: set one secret for every replica.
    hash_secret: SecretStr = SecretStr("")
    # Replace the fingerprint stored in the database with this secret's (every key hashed under
    # the old secret stops working): for a deliberate change of the hash secret.
    accept_new_hash_secret: bool = False
    # The verdict age bound: how long a router may reuse an Authorize answer when it hears no
    # keys.changed event (NATS down), so a revocation holds within it.
    cache_ttl_seconds: int = Field(default=30, ge=0, le=3600)
    # Parallel-request slots a router replica holds lapse this long after its last LeaseQuota.
    parallel_lease_seconds: int = Field(default=60, ge=5, le=3600)
    keys_changed_subject: str = events.KEYS_CHANGED
    # Billing, which holds the budgets a key's body sets (max_budget_micros_usd, daily and
    # monthly limits). Empty: those fields are refused.
    billing_target: str = "127.0.0.1:50053"
    billing_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'auth.db'}"
