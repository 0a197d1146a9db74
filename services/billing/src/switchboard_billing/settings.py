"""Billing's settings, read once from the environment (SWITCHBOARD_BILLING_X or SWITCHBOARD_X)."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from switchboard_common import events
from switchboard_common.settings import CommonSettings


class BillingSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_BILLING_", frozen=True,
                                      extra="ignore")

    grpc_port: int = 50053
    database_url: str = ""  # empty: sqlite:///<data_dir>/billing.db

    # Who may read spend: auth's Authorize answers for the caller's key.
    auth_target: str = "127.0.0.1:50052"
    auth_timeout_seconds: float = 2.0
    auth_cache_seconds: float = 30.0

    # The usage consumer. Stream and subject are settings so tests can run side by side.
    usage_stream: str = events.USAGE_STREAM
    usage_subject: str = events.USAGE_RECORDED
    consumer_durable: str = "billing"
    fetch_batch: int = 256
    fetch_timeout_seconds: float = 1.0
    batch_linger_seconds: float = 0.2  # usage shows in spend this much later; batches grow
    max_ack_pending: int = 4096
    ack_wait_seconds: float = 30.0
    nak_delay_seconds: float = 2.0  # redelivery delay after a database failure

    @model_validator(mode="after")
    def _ack_pending_holds_a_batch(self) -> "BillingSettings":
        if self.max_ack_pending < self.fetch_batch:
            raise ValueError("max_ack_pending must be at least fetch_batch")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'billing.db'}"
