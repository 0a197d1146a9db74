"""The composition root: the one place that builds the router's I/O objects and wires them."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from switchboard_common.admission import Admission, RefusalCache, VerdictCache
from switchboard_common.auth_client import AuthClient
from switchboard_common.events import batch_subject
from switchboard_common.journal import SegmentLog
from switchboard_common.publisher import BatchPublisher

from switchboard_router import config as config_file
from switchboard_router import providers, sealing
from switchboard_router.config import Config
from switchboard_router.keyring import KeyRing
from switchboard_router.oauth_lock import RefreshLease
from switchboard_router.providers.base import Provider
from switchboard_router.stored_credentials import SealedStore, StoredCredentials
from switchboard_router.billing_client import BillingClient
from switchboard_router.budgets import Budgets
from switchboard_router.cache import ResponseCache, backend_errors
from switchboard_router.cache import stores as cache_stores
from switchboard_router.costs import Costs
from switchboard_router.finished import Finished
from switchboard_router.gateway import Gateway
from switchboard_router.guarding import Guard, GuardrailsClient
from switchboard_router.journal import UsageJournal
from switchboard_router.limits import Limiter
from switchboard_router.messaging import NatsLink
from switchboard_router.metrics import RequestMetrics, cached_cost
from switchboard_router.pipeline import Pipeline
from switchboard_router.prices import Prices
from switchboard_router.retries import Retrier
from switchboard_router.remembering import Memory, MemoryClient
from switchboard_router.stored_responses import StoredResponses, StoredResponsesClient
from switchboard_router.routing import Routes, TimeoutDefaults
from switchboard_router.inbound.serve import Inbound
from switchboard_router.servicer import GatewayServicer
from switchboard_router.settings import RouterSettings, config_environment, credentials_environment
from switchboard_router.tokens import Tokenizer
from switchboard_router.upstream import Upstream
from switchboard_router.usage import UsageRecorder, encode_batch

_log = structlog.get_logger("bootstrap")


@dataclass
class App:
    settings: RouterSettings
    config: config_file.Config
    tokenizer: Tokenizer
    upstream: Upstream
    auth: AuthClient
    admission: Admission
    limits: Limiter
    routes: Routes
    journal: UsageJournal
    publisher: BatchPublisher
    nats: NatsLink
    usage: UsageRecorder
    billing: BillingClient
    budgets: Budgets
    guardrails: GuardrailsClient
    memory_client: MemoryClient
    memory: Memory
    responses_client: StoredResponsesClient
    stored_responses: StoredResponses
    gateway: Gateway
    credentials: StoredCredentials
    servicer: GatewayServicer
    cache: ResponseCache

    async def close(self) -> None:
        """After the server drained: get the usage backlog acked (what is not stays in the
        journal for the next start), give back the rate-limit quota this replica holds, then
        close the journal, NATS, HTTP, auth, guardrails and memory (turns still being stored
        first)."""
        await self.memory.drain()
        await self.stored_responses.drain()
        await self.usage.drain(self.settings.usage_drain_seconds)
        await self.limits.close()
        await self.budgets.close()  # what the slices hold unused goes back to billing
        await self.billing.close()
        await self.publisher.close()
        await asyncio.to_thread(self.journal.close)
        await self.nats.close()
        await self.upstream.close()
        await self.auth.close()
        await self.credentials.close()
        await self.guardrails.close()
        await self.memory_client.close()
        await self.cache.close()
        await self.responses_client.close()


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

    def keyrings() -> list[KeyRing]:
        """The providers with several keys (api_keys, stored ones) as they are now, for the stats."""
        return [ring for p in built.values() if (ring := getattr(p, "keyring", None)) is not None]
    _log.info("providers", enabled=sorted(enabled), disabled=disabled)
    billing = BillingClient(settings.billing_target, settings.billing_timeout_seconds)
    prices = Prices(billing, settings.price_ttl_seconds)
    routes = Routes(config, built, TimeoutDefaults(
        total_seconds=settings.upstream_timeout_seconds,
        read_seconds=settings.upstream_read_timeout_seconds,
        connect_seconds=settings.upstream_connect_timeout_seconds), created=int(time.time()),
        strategy=settings.routing_strategy, prices=prices)

    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    admission = Admission(auth.authorize, VerdictCache(settings.verdict_cache_size),
                          default_ttl=settings.verdict_max_age_seconds,
                          max_ttl=settings.verdict_max_age_seconds,
                          refusal_ttl=settings.negative_verdict_ttl_seconds,
                          refusals=RefusalCache(settings.negative_verdict_cache_size))
    replica = settings.replica_id or _replica_id()
    limits = Limiter(auth, replica)
    limits.start()

    def keys_changed(key_id: str, tenant_id: str) -> None:
        admission.keys_changed(key_id, tenant_id)
        limits.keys_changed(key_id, tenant_id)

    journal, publisher = await _journal_and_publisher(settings)
    credentials = _stored_credentials(settings, config, built, env)
    link = NatsLink(settings.nats_url, publisher, on_key_changed=keys_changed,
                    on_reconnect=admission.clear, ensure_stream=settings.ensure_usage_stream,
                    on_credentials_changed=credentials.changed)
    credentials.use_lease(RefreshLease(lambda: link.client, replica).hold)
    credentials.start()
    await link.start(settings.nats_connect_wait_seconds)
    budgets = Budgets(billing, prices, tokenizer,
                      default_max_tokens=settings.budget_default_max_tokens,
                      lease_requests=settings.budget_lease_requests,
                      lease_share=settings.budget_lease_share,
                      reach=routes.reachable,
                      renew_before_seconds=settings.budget_renew_before_seconds)
    metrics = None
    if settings.metrics_port:  # with no endpoint to read them, requests are not counted
        metrics = RequestMetrics([name for m in config.models for name in (m.name, *m.aliases)
                                  if not name.endswith("/*")],
                                 key_labels=settings.metrics_key_labels)
    usage = UsageRecorder(journal, publisher, settings.usage_subject, tokenizer,
                          progress_seconds=settings.journal_progress_seconds,
                          on_tokens=limits.settle, settle=budgets.settle,
                          observe=Finished(cached_cost(prices), metrics))
    usage.start()
    guardrails = GuardrailsClient(settings.guardrails_target, settings.guardrails_timeout_seconds)
    memory_client = MemoryClient(settings.memory_target, settings.memory_timeout_seconds)
    memory = Memory(memory_client, {name: m.context_window_tokens for m in config.models
                                    for name in (m.name, *m.aliases) if m.context_window_tokens},
                    journal=journal, snapshot_seconds=settings.journal_progress_seconds)
    memory.replay(journal.unstored_turns())  # session turns a crash cut, stored in the background
    cache = _response_cache(config, routes, metrics=bool(settings.metrics_port))
    responses_client = StoredResponsesClient(settings.memory_target, settings.memory_timeout_seconds)
    # Built even when responses.store is false: responses stored before stay readable and deletable.
    stored_responses = StoredResponses(responses_client)
    gateway = Gateway(admission, routes, built, Pipeline(
        Guard(guardrails), memory, default_policy_ids=config.default_guardrail_policy_ids), usage,
                      moderation_model=config.moderation_model,
                      request_timeout=settings.request_timeout_seconds, limits=limits,
                      budgets=budgets, costs=Costs(prices),
                      retrier=Retrier.from_config(config.routing.retries), cache=cache)
    return App(settings=settings, config=config, tokenizer=tokenizer, upstream=upstream, auth=auth,
               admission=admission, limits=limits, routes=routes, journal=journal,
               publisher=publisher, nats=link, usage=usage, billing=billing, budgets=budgets,
               guardrails=guardrails,
               memory_client=memory_client, memory=memory, responses_client=responses_client,
               stored_responses=stored_responses, gateway=gateway, credentials=credentials,
               cache=cache,
               servicer=GatewayServicer(gateway, routes, admission, keyrings, credentials,
                                        inbound=Inbound(gateway, admission, routes, tokenizer, built,
                                                        stored_responses,
                                                        storing=config.store_responses)))


def _stored_credentials(settings: RouterSettings, config: Config, built: Mapping[str, Provider],
                        env: Mapping[str, str] | None) -> StoredCredentials:
    """The keys added through /api/credentials, sealed under SWITCHBOARD_CREDENTIALS_KEY; a
    provider that takes its keys from there alone (`api_keys: []`) needs that key set."""
    try:
        sealer = sealing.from_environment(credentials_environment() if env is None else env)
    except sealing.KeyConfigError as exc:
        raise SystemExit(f"stored provider credentials: {exc}") from None
    stored_only = sorted(n for n in built if config.providers[n].api_keys == ())
    if stored_only and sealer is None:
        raise SystemExit(f"providers {', '.join(stored_only)} take their keys from /api/credentials "
                         f"(api_keys: []), which needs {sealing.KEY_VARIABLE} or "
                         f"{sealing.KEY_FILE_VARIABLE} set")
    store = SealedStore(settings.auth_target, settings.auth_timeout_seconds)
    return StoredCredentials(store, sealer, built, config.providers)


def _response_cache(config: Config, routes: Routes, *, metrics: bool) -> ResponseCache:
    """In this process's memory, or Redis when the `cache` section says so (connected lazily:
    a Redis that is down at start makes misses, not a router that will not start)."""
    store = cache_stores.build(config.cache, on_error=backend_errors(metrics))
    _log.info("response cache", backend=config.cache.backend, ttl_seconds=config.cache.ttl_seconds)
    return ResponseCache(config.cache, store, routes.cache_group, metrics=metrics)


def _replica_id() -> str:
    return f"{socket.gethostname()[:100]}-{secrets.token_hex(4)}"


async def _journal_and_publisher(settings: RouterSettings) -> tuple[UsageJournal, BatchPublisher]:
    """Replay the journal (requests a crash cut become interrupted events) and queue every
    event JetStream has not acked, to leave in batches; a batch's ack trims its events from the
    journal."""
    journal = UsageJournal(SegmentLog(
        settings.resolved_journal_dir, prefix="usage", flush_seconds=settings.journal_flush_seconds,
        segment_bytes=settings.journal_segment_bytes))
    pending = await asyncio.to_thread(journal.recover)
    publisher = BatchPublisher(batch_subject(settings.usage_subject), encode_batch,
                               on_acked=journal.acked,
                               ack_timeout=settings.usage_ack_timeout_seconds,
                               max_in_flight=settings.usage_max_in_flight,
                               max_records=settings.usage_batch_records,
                               linger_seconds=settings.usage_batch_seconds)
    for event_id, payload in pending:
        publisher.submit(event_id, payload)
    publisher.start()
    return journal, publisher
