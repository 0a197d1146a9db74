"""The composition root: the one place that builds the router's I/O objects and wires them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from switchboard_common.events import EventPublisher

from switchboard_router import config as config_file
from switchboard_router import providers
from switchboard_router.admission import Admission
from switchboard_router.auth_client import AuthClient
from switchboard_router.gateway import Gateway
from switchboard_router.messaging import NatsLink
from switchboard_router.pipeline import Pipeline
from switchboard_router.routing import Routes, TimeoutDefaults
from switchboard_router.servicer import GatewayServicer
from switchboard_router.settings import RouterSettings, config_environment
from switchboard_router.tokens import Tokenizer
from switchboard_router.upstream import Upstream
from switchboard_router.usage import UsageRecorder
from switchboard_router.verdicts import VerdictCache

_log = structlog.get_logger("bootstrap")


@dataclass
class App:
    settings: RouterSettings
    config: config_file.Config
    tokenizer: Tokenizer
    upstream: Upstream
    auth: AuthClient
    admission: Admission
    routes: Routes
    publisher: EventPublisher
    nats: NatsLink
    usage: UsageRecorder
    gateway: Gateway
    servicer: GatewayServicer

    async def close(self) -> None:
        """After the server drained: publish what is pending, then close NATS, HTTP, auth."""
        await self.usage.drain(self.settings.usage_drain_seconds)
        await self.publisher.close()
        await self.nats.close()
        await self.upstream.close()
        await self.auth.close()


async def build(settings: RouterSettings, *, env: Mapping[str, str] | None = None,
                tokenizer: Tokenizer | None = None) -> App:
    """Everything the router needs, ready to serve. Raises config.ConfigError for a bad file."""
    config = config_file.load(settings.config_path, config_environment() if env is None else env)
    if tokenizer is None:
        started = time.perf_counter()
        tokenizer = await asyncio.to_thread(Tokenizer.load)
        _log.info("tokenizer loaded", seconds=round(time.perf_counter() - started, 2))
    upstream = Upstream(pool_size=settings.upstream_pool_size, per_host=settings.upstream_pool_per_host)
    await upstream.start()
    enabled = {name: spec for name, spec in config.providers.items() if spec.enabled}
    built = {name: providers.build(spec, upstream, tokenizer) for name, spec in enabled.items()}
    disabled = sorted(set(config.providers) - set(enabled))
    _log.info("providers", enabled=sorted(enabled), disabled=disabled)
    routes = Routes(config, built, TimeoutDefaults(
        total_seconds=settings.upstream_timeout_seconds,
        read_seconds=settings.upstream_read_timeout_seconds,
        connect_seconds=settings.upstream_connect_timeout_seconds), created=int(time.time()))

    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    admission = Admission(auth, VerdictCache(settings.verdict_cache_size),
                          default_ttl=settings.verdict_ttl_seconds,
                          refusal_ttl=settings.negative_verdict_ttl_seconds)
    publisher = EventPublisher(None, settings.data_dir / "router-outbox.sqlite")
    publisher.start()
    link = NatsLink(settings.nats_url, publisher, on_key_changed=admission.drop_key,
                    on_reconnect=admission.clear, ensure_stream=settings.ensure_usage_stream)
    await link.start(settings.nats_connect_wait_seconds)
    usage = UsageRecorder(publisher, settings.usage_subject, tokenizer)
    gateway = Gateway(admission, routes, built, Pipeline(), usage,
                      moderation_model=config.moderation_model)
    return App(settings=settings, config=config, tokenizer=tokenizer, upstream=upstream, auth=auth,
               admission=admission, routes=routes, publisher=publisher, nats=link, usage=usage,
               gateway=gateway, servicer=GatewayServicer(gateway, routes, admission))
