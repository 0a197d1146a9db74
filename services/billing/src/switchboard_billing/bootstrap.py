"""The composition root: builds the engine, auth clients, price book, usage consumer, budget
leases, the lease reclaimer and the alert dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations
from switchboard_common.admission import Admission, VerdictCache
from switchboard_common.auth_client import AuthClient

from switchboard_billing import price_config
from switchboard_billing.access import Access
from switchboard_billing.alerts import AlertDispatcher
from switchboard_billing.budget_store import BudgetStore
from switchboard_billing.budgets import BudgetService, Reclaimer
from switchboard_billing.catalog import GenaiPricesCatalog
from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.key_directory import KeyDirectory
from switchboard_billing.leases import Leases
from switchboard_billing.migrations import HISTORY
from switchboard_billing.pricing import PriceBook
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings, config_environment
from switchboard_billing.spend import SpendQueries
from switchboard_billing.writes import Writer

_log = structlog.get_logger("bootstrap")
_CACHED_VERDICTS = 10_000


@dataclass
class App:
    engine: AsyncEngine
    writer: Writer
    auth: AuthClient
    keys: KeyDirectory
    consumer: UsageConsumer
    queries: SpendQueries
    budgets: BudgetService
    prices: PriceBook
    reclaimer: Reclaimer
    alerts: AlertDispatcher

    async def close(self) -> None:
        # The consumer first: its batch in hand commits and is acked before the engine goes.
        await self.consumer.stop()
        await self.reclaimer.stop()
        await self.alerts.stop()
        await self.auth.close()
        await self.keys.close()
        await self.writer.close()
        await self.engine.dispose()


def price_book(settings: BillingSettings) -> PriceBook:
    """switchboard.yaml's prices over the catalog; a bad prices section stops billing, and so
    does a file named in the environment that is missing (the default one may be absent)."""
    named = "config_path" in settings.model_fields_set
    if not named and not settings.config_path.exists():
        _log.warning("no switchboard.yaml: prices come from the catalog alone",
                     path=str(settings.config_path))
        return PriceBook(price_config.PriceOverrides(), GenaiPricesCatalog())
    try:
        overrides = price_config.load(settings.config_path, config_environment())
    except price_config.PriceConfigError as exc:
        raise SystemExit(str(exc)) from None
    return PriceBook(overrides, GenaiPricesCatalog() if overrides.use_catalog else None)


async def build(settings: BillingSettings, *, consume: bool = True) -> App:
    """Everything billing needs, with the schema migrated and (unless told not to) the usage
    consumer, the lease reclaimer and the alert dispatcher started in the background."""
    prices = price_book(settings)
    url = settings.resolved_database_url
    await migrations.upgrade(url, HISTORY)
    # A usage message is acked once its commit returns: on SQLite that commit must be on disk.
    engine = db.create_engine(url, sqlite_synchronous="FULL")
    writer = Writer(engine, sqlite_synchronous="FULL")
    repo = UsageRepository(engine)

    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    keys = KeyDirectory(settings.auth_target, settings.auth_timeout_seconds)
    # Refusals are not kept (refusal_ttl=0): billing answers few calls, and none is hot.
    access = Access(Admission(auth.authorize, VerdictCache(_CACHED_VERDICTS),
                              default_ttl=settings.auth_cache_seconds,
                              max_ttl=settings.auth_cache_seconds, refusal_ttl=0),
                    key_tenant=keys.tenant_of)
    leases = Leases(writer, settings.lease_ttl_seconds)
    alerts = AlertDispatcher(writer, settings)
    consumer = UsageConsumer(repo, writer, prices, settings, on_alerts=alerts.wake)
    reclaimer = Reclaimer(leases, settings.reclaim_interval_seconds, settings.lease_grace_seconds)
    if consume:
        consumer.start()
        reclaimer.start()
        alerts.start()
    _log.info("billing ready", database=engine.dialect.name, auth_target=settings.auth_target,
              price_catalog=prices.catalog_source or "none")
    return App(engine=engine, writer=writer, auth=auth, keys=keys, consumer=consumer,
               queries=SpendQueries(access, repo, export_batch_rows=settings.export_batch_rows),
               budgets=BudgetService(access, BudgetStore(writer), leases), prices=prices,
               reclaimer=reclaimer, alerts=alerts)
