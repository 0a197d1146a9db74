"""Billing's settings, read once from the environment (SWITCHBOARD_BILLING_X or SWITCHBOARD_X)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, model_validator
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

    # switchboard.yaml: billing reads its `prices` section (the suite-wide SWITCHBOARD_CONFIG_PATH
    # works as well, so router and billing read one file).
    config_path: Path = Path("switchboard.yaml")

    # Budget leases: a lease not renewed within its ttl is reclaimed after the grace period.
    lease_ttl_seconds: float = Field(60.0, gt=0)
    lease_grace_seconds: float = Field(30.0, ge=0)
    reclaim_interval_seconds: float = Field(10.0, gt=0)

    # Budget alerts: the budget.alert events go to their own stream (created when missing).
    alerts_stream: str = "BUDGET_ALERTS"
    alert_subject: str = events.BUDGET_ALERT
    alert_poll_seconds: float = Field(1.0, gt=0)
    alert_backoff_seconds: float = Field(1.0, gt=0)  # doubled per failed attempt ...
    alert_backoff_max_seconds: float = Field(300.0, gt=0)  # ... up to this
    alert_max_attempts: int = Field(100, ge=1)  # then dropped, logged as an error
    alert_webhook_timeout_seconds: float = Field(10.0, gt=0)

    export_batch_rows: int = Field(1000, ge=1)  # rows per query (and per chunk) of an export
    metrics_key_labels: int = Field(1000, ge=1)  # distinct key_id label values, then "other"

    @model_validator(mode="after")
    def _ack_pending_holds_a_batch(self) -> BillingSettings:
        if self.max_ack_pending < self.fetch_batch:
            raise ValueError("max_ack_pending must be at least fetch_batch")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'billing.db'}"


def config_environment() -> Mapping[str, str]:
    """The variables `${VAR}` in switchboard.yaml expand from (the one other read of os.environ)."""
    return dict(os.environ)
