"""The composition root: builds the engine, auth client, usage consumer and spend queries."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations

from switchboard_billing.access import Access
from switchboard_billing.auth_client import AuthClient
from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.migrations import HISTORY
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_billing.spend import SpendQueries

_log = structlog.get_logger("bootstrap")


@dataclass
class App:
    engine: AsyncEngine
    auth: AuthClient
    consumer: UsageConsumer
    queries: SpendQueries

    async def close(self) -> None:
        # The consumer first: its batch in hand commits and is acked before the engine goes.
        await self.consumer.stop()
        await self.auth.close()
        await self.engine.dispose()


async def build(settings: BillingSettings, *, consume: bool = True) -> App:
    """Everything billing needs, with the schema migrated and (unless told not to) the usage
    consumer started in the background."""
    url = settings.resolved_database_url
    await migrations.upgrade(url, HISTORY)
    engine = db.create_engine(url)
    repo = UsageRepository(engine)

    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    access = Access(auth.authorize, settings.auth_cache_seconds)
    consumer = UsageConsumer(repo, settings)
    if consume:
        consumer.start()
    _log.info("billing ready", database=engine.dialect.name, auth_target=settings.auth_target)
    return App(engine=engine, auth=auth, consumer=consumer, queries=SpendQueries(access, repo))
