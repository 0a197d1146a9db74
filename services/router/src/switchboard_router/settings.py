"""The router's settings, read once from the environment (prefix SWITCHBOARD_ROUTER_)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict
from switchboard_common.events import USAGE_RECORDED
from switchboard_common.settings import CommonSettings

from switchboard_router.strategies import STRATEGIES


class RouterSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_ROUTER_", frozen=True, extra="ignore")

    grpc_port: int = 50051
    # The suite-wide prefix makes SWITCHBOARD_CONFIG_PATH work as well.
    config_path: Path = Path("switchboard.yaml")

    auth_target: str = "127.0.0.1:50052"
    auth_timeout_seconds: float = Field(2.0, gt=0)
    # Admitted keys cached (one entry per key, least recently used evicted first).
    verdict_cache_size: int = Field(100_000, ge=1)
    # The verdict age bound: a cached verdict is asked again after this long even if no
    # keys.changed came (NATS away), and never kept past auth's own cache_ttl_seconds.
    verdict_max_age_seconds: float = Field(30.0, gt=0)
    # 401 verdicts are kept this long, to shed brute force without hiding a fixed key for long,
    # in a cache of their own so bogus keys never evict valid ones.
    negative_verdict_ttl_seconds: float = Field(5.0, ge=0)
    negative_verdict_cache_size: int = Field(10_000, ge=1)
    # Names this replica to auth for rate-limit leases (parallel-request slots are held per
    # replica). Empty: the host name and a random suffix, new at every start.
    replica_id: str = Field("", max_length=128)

    # Billing: budget slices leased per key (reserve-then-settle) and prices for the cost shown
    # to callers. No call per request: a slice lasts several requests, a price `price_ttl`.
    billing_target: str = "127.0.0.1:50053"
    billing_timeout_seconds: float = Field(2.0, gt=0)
    price_ttl_seconds: float = Field(300.0, gt=0)
    # A request with a budget reserves its prompt plus max_tokens (this when it names none).
    budget_default_max_tokens: int = Field(4096, ge=1)
    # A slice topped up asks for this many requests' estimates at once (fewer calls to billing;
    # more held by one replica while others may need it).
    budget_lease_requests: int = Field(10, ge=1)
    # ... or this fraction of what the budget has left, when more: 8 means an eighth. Higher:
    # more calls to billing; lower: one replica may hold much of a budget others could use.
    budget_lease_share: int = Field(8, ge=1)
    # Renew a lease this long before it expires (billing's lease ttl is 60 s by default).
    budget_renew_before_seconds: float = Field(10.0, ge=0)

    # Called only for keys or tenants with a guardrail policy, and requests naming a session or a
    # RAG collection; the common request reaches neither.
    guardrails_target: str = "127.0.0.1:50054"
    guardrails_timeout_seconds: float = Field(2.0, gt=0)  # a check, or one piece of a stream scan
    memory_target: str = "127.0.0.1:50055"
    memory_timeout_seconds: float = Field(5.0, gt=0)

    usage_subject: str = USAGE_RECORDED
    # Create the USAGE stream (one replica) if it is missing; one that exists is only compared.
    ensure_usage_stream: bool = True
    nats_connect_wait_seconds: float = Field(2.0, ge=0)  # then start anyway and keep trying
    usage_drain_seconds: float = Field(10.0, ge=0)  # at shutdown, to get the backlog acked
    usage_ack_timeout_seconds: float = Field(5.0, gt=0)  # then a batch is sent again
    usage_max_in_flight: int = Field(64, ge=1)  # batch messages awaiting their ack at once
    # Usage events leave in one UsageBatch message per this long (from the oldest waiting), or
    # as soon as this many wait: NATS and billing pay per message, the journal holds them meanwhile.
    usage_batch_seconds: float = Field(0.02, ge=0)
    usage_batch_records: int = Field(256, ge=1)

    # The usage journal (one per replica; on a persistent volume in Kubernetes). Empty: data_dir.
    journal_dir: Path | None = None
    journal_flush_seconds: float = Field(0.02, gt=0)  # fdatasync at most this often (power loss)
    journal_segment_bytes: int = Field(8 << 20, ge=4096)  # then a new segment, older ones trimmed
    journal_progress_seconds: float = Field(1.0, gt=0)  # tokens so far of requests still open

    # One deadline per request, every attempt and failover included, cut further to the caller's
    # gRPC deadline and its SDK's timeout. Half the OpenAI SDKs' own 600 s, so the caller hears the
    # gateway's 504 (or a stream's error event) rather than giving up and retrying on its own.
    request_timeout_seconds: float = Field(300.0, gt=0)
    # Provider HTTP defaults; switchboard.yaml may override them per provider and per deployment.
    upstream_connect_timeout_seconds: float = Field(10.0, gt=0)
    upstream_timeout_seconds: float = Field(600.0, gt=0)
    upstream_read_timeout_seconds: float = Field(60.0, gt=0)  # between two reads of an answer
    upstream_pool_size: int = Field(1000, ge=1)
    upstream_pool_per_host: int = Field(256, ge=0)

    # The request metrics (metrics.py, served on metrics_port) labelled by key id too: one series
    # per key and model, so only where the keys are few.
    metrics_key_labels: bool = False

    # The routing strategy of every model group that names none, over switchboard.yaml's
    # routing.strategy: load_balanced, failover, cost_optimized or latency_optimized.
    routing_strategy: str | None = Field(None, validation_alias=AliasChoices(
        "SWITCHBOARD_ROUTER_ROUTING_STRATEGY", "ROUTING_STRATEGY"))

    @field_validator("routing_strategy")
    @classmethod
    def _known_strategy(cls, name: str | None) -> str | None:
        if name and name not in STRATEGIES:
            raise ValueError(f"unknown routing strategy {name!r} (known: {', '.join(STRATEGIES)})")
        return name or None


    @property
    def resolved_journal_dir(self) -> Path:
        return self.journal_dir or self.data_dir / "router-journal"


def config_environment() -> Mapping[str, str]:
    """The variables `${VAR}` in switchboard.yaml expand from (the one other read of os.environ)."""
    return dict(os.environ)


def credentials_environment() -> Mapping[str, str]:
    """SWITCHBOARD_CREDENTIALS_KEY (or _KEY_FILE) and _PREVIOUS_KEYS: the key that stored provider
    credentials are sealed under (sealing.py), named as every replica and the CLI name it."""
    return {k: v for k, v in os.environ.items() if k.startswith("SWITCHBOARD_CREDENTIALS_")}
