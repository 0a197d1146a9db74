"""`python -m switchboard_common.usage_stream`: make the USAGE stream as deployment wants it.

The stream's configuration belongs to deployment, not to each service start: services create it
only when it is missing (one replica, for `make run`) and otherwise log what differs. This command
creates it, or updates it to these settings: Kubernetes runs it as billing's init container with
three replicas (deploy/k8s/base/billing/billing.yaml). Settings: SWITCHBOARD_USAGE_STREAM_* and
SWITCHBOARD_NATS_URL.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from nats.js.errors import NotFoundError
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_common import events, logs
from switchboard_common.settings import CommonSettings, load, warn_unknown_variables

_log = structlog.get_logger("usage_stream")


class UsageStreamSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_USAGE_STREAM_", frozen=True,
                                      extra="ignore")

    name: str = events.USAGE_STREAM
    subjects: tuple[str, ...] = ("usage.>",)
    replicas: int = Field(1, ge=1, le=5)
    max_age_seconds: float = Field(events.USAGE_MAX_AGE_SECONDS, gt=0)
    wait_seconds: float = Field(120.0, ge=0)  # for NATS to answer (it may start with us)


async def apply(settings: UsageStreamSettings) -> str:
    """Create or update the stream; returns "created", "updated" or "unchanged"."""
    wanted = events.usage_stream_config(settings.name, list(settings.subjects), replicas=settings.replicas,
                                        max_age=settings.max_age_seconds)
    assert wanted.name
    nc = await asyncio.wait_for(events.connect(settings.nats_url, "switchboard-usage-stream"),
                                settings.wait_seconds)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(wanted.name)
        except NotFoundError:
            await js.add_stream(wanted)
            return "created"
        differences = events.stream_differences(info.config, wanted)
        if not differences:
            return "unchanged"
        await js.update_stream(wanted)
        _log.info("usage stream updated", stream=wanted.name, differences=differences)
        return "updated"
    finally:
        await nc.close()


def cli() -> None:
    settings = load(UsageStreamSettings)
    logs.configure("usage-stream", settings.log_level, settings.log_format)
    warn_unknown_variables(UsageStreamSettings)
    started = time.monotonic()
    result = asyncio.run(apply(settings))
    _log.info("usage stream ready", stream=settings.name, result=result,
              replicas=settings.replicas, max_age_seconds=settings.max_age_seconds,
              seconds=round(time.monotonic() - started, 2))


if __name__ == "__main__":
    cli()
