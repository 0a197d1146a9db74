"""The router's settings, read once from the environment (prefix SWITCHBOARD_ROUTER_)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from switchboard_common.events import USAGE_RECORDED
from switchboard_common.settings import CommonSettings


class RouterSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_ROUTER_", frozen=True, extra="ignore")

    grpc_port: int = 50051
    # The suite-wide prefix makes SWITCHBOARD_CONFIG_PATH work as well.
    config_path: Path = Path("switchboard.yaml")

    auth_target: str = "127.0.0.1:50052"
    auth_timeout_seconds: float = Field(2.0, gt=0)
    verdict_cache_size: int = Field(100_000, ge=1)
    # Used when auth's verdict says cache_ttl_seconds 0 (unset); keys.changed drops entries anyway.
    verdict_ttl_seconds: float = Field(60.0, ge=0)
    # 401/403 verdicts are kept this long, to shed brute force without hiding a fixed key for long.
    negative_verdict_ttl_seconds: float = Field(5.0, ge=0)

    usage_subject: str = USAGE_RECORDED
    ensure_usage_stream: bool = True  # create/update the USAGE stream at start
    nats_connect_wait_seconds: float = Field(2.0, ge=0)  # then start anyway and keep trying
    usage_drain_seconds: float = Field(10.0, ge=0)

    # Provider HTTP defaults; switchboard.yaml may override them per provider and per deployment.
    upstream_connect_timeout_seconds: float = Field(10.0, gt=0)
    upstream_timeout_seconds: float = Field(600.0, gt=0)
    upstream_read_timeout_seconds: float = Field(60.0, gt=0)  # between two reads of a stream
    upstream_pool_size: int = Field(1000, ge=1)
    upstream_pool_per_host: int = Field(256, ge=0)


def config_environment() -> Mapping[str, str]:
    """The variables `${VAR}` in switchboard.yaml expand from (the one other read of os.environ)."""
    return dict(os.environ)
