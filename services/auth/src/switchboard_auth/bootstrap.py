"""The composition root: builds the engine, hasher, NATS notifier and use cases auth runs on."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations

from switchboard_auth import key_format
from switchboard_auth.admission import Admission
from switchboard_auth.domain import MASTER_KEY_ID, utc_now
from switchboard_auth.hashing import (MIN_SECRET_BYTES, KeyHasher,
                                      load_or_create_server_secret)
from switchboard_auth.key_budgets import KeyBudgets
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.migrations import HISTORY
from switchboard_auth.notifier import KeysChangedNotifier
from switchboard_auth.sealed_credentials import SealedCredentials
from switchboard_auth.quota import QuotaLedger
from switchboard_auth.quota_store import QuotaStore
from switchboard_auth.repository import Repository
from switchboard_auth.secret_guard import ensure_one_secret
from switchboard_auth.settings import AuthSettings
from switchboard_auth.tenants import TenantAdmin

_log = structlog.get_logger("bootstrap")

NO_MASTER_KEY = ("auth needs a master key: set SWITCHBOARD_MASTER_KEY (or "
                 "SWITCHBOARD_AUTH_MASTER_KEY); `make run` generates one")
SHORT_HASH_SECRET = (f"SWITCHBOARD_AUTH_HASH_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                     "(e.g. `openssl rand -hex 32`)")
_HOUSEKEEPING_SECONDS = 600.0


@dataclass
class App:
    engine: AsyncEngine
    notifier: KeysChangedNotifier
    admission: Admission
    keys: KeyAdmin
    tenants: TenantAdmin
    quota: QuotaLedger
    budgets: KeyBudgets | None = None
    credentials: SealedCredentials | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.notifier.close()
        if self.budgets is not None:
            await self.budgets.close()
        await self.engine.dispose()


async def build(settings: AuthSettings) -> App:
    """Everything auth needs, with the schema migrated, the hash secret checked against the
    database's, and the default tenant and master key in place."""
    master_key = settings.master_key.get_secret_value()
    if not master_key:
        raise SystemExit(NO_MASTER_KEY)
    explicit = settings.hash_secret.get_secret_value().encode()
    if explicit and len(explicit) < MIN_SECRET_BYTES:
        raise SystemExit(SHORT_HASH_SECRET)
    hasher = KeyHasher(explicit or load_or_create_server_secret(
        settings.data_dir / "auth-hash-secret"))

    url = settings.resolved_database_url
    await migrations.upgrade(url, HISTORY)
    engine = db.create_engine(url)
    repo = Repository(engine)
    try:
        await ensure_one_secret(repo, hasher, explicit=bool(explicit),
                                accept_new=settings.accept_new_hash_secret)
    except SystemExit:
        await engine.dispose()
        raise

    notifier = KeysChangedNotifier(settings.nats_url, settings.keys_changed_subject)
    tenants = TenantAdmin(repo, notifier.tenant_changed)
    await tenants.ensure_default()
    await repo.upsert_master(hasher.hash(master_key), key_format.display_prefix(master_key),
                             key_format.hint(master_key), utc_now())
    _log.info("master key ready", key_id=MASTER_KEY_ID, database=engine.dialect.name)

    notifier.start()
    quota = QuotaLedger(repo, QuotaStore(repo.insert),
                        parallel_lease_seconds=settings.parallel_lease_seconds)
    budgets = (KeyBudgets(settings.billing_target, settings.billing_timeout_seconds)
               if settings.billing_target else None)
    app = App(engine=engine, notifier=notifier,
              admission=Admission(repo, hasher, settings.cache_ttl_seconds),
              keys=KeyAdmin(repo, hasher, notifier, budgets=budgets), tenants=tenants,
              quota=quota, budgets=budgets,
              credentials=SealedCredentials(engine, notifier.credentials_changed))
    app._tasks.append(asyncio.create_task(_housekeeping(quota, repo)))
    return app


async def _housekeeping(quota: QuotaLedger, repo: Repository) -> None:
    """Drop quota counters of past days, lapsed parallel slots and ended secrets now and then;
    every replica may, it is idempotent."""
    while True:
        try:
            dropped = await quota.forget_old_windows()
            dropped += await repo.forget_ended_secrets(utc_now() - timedelta(days=1))
            if dropped:
                _log.info("expired quota windows and secrets dropped", rows=dropped)
        except Exception as exc:  # noqa: BLE001 - retried at the next round
            _log.warning("dropping old quota windows failed", error=type(exc).__name__)
        await asyncio.sleep(_HOUSEKEEPING_SECONDS)
