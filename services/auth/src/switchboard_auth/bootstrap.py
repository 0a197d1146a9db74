"""The composition root: builds the engine, hasher, NATS notifier and use cases auth runs on."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations

from switchboard_auth.admission import Admission
from switchboard_auth.domain import MASTER_KEY_ID, utc_now
from switchboard_auth.hashing import KeyHasher, display_prefix, load_or_create_server_secret
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.migrations import HISTORY
from switchboard_auth.notifier import KeysChangedNotifier
from switchboard_auth.repository import Repository
from switchboard_auth.settings import AuthSettings
from switchboard_auth.tenants import TenantAdmin

_log = structlog.get_logger("bootstrap")

NO_MASTER_KEY = ("auth needs a master key: set SWITCHBOARD_MASTER_KEY (or "
                 "SWITCHBOARD_AUTH_MASTER_KEY); `make run` generates one")


@dataclass
class App:
    engine: AsyncEngine
    notifier: KeysChangedNotifier
    admission: Admission
    keys: KeyAdmin
    tenants: TenantAdmin

    async def close(self) -> None:
        await self.notifier.close()
        await self.engine.dispose()


async def build(settings: AuthSettings) -> App:
    """Everything auth needs, with the schema migrated and the default tenant and master key
    in place."""
    master_key = settings.master_key.get_secret_value()
    if not master_key:
        raise SystemExit(NO_MASTER_KEY)
    server_secret = (settings.hash_secret.get_secret_value().encode()
                     or load_or_create_server_secret(settings.data_dir / "auth-hash-secret"))
    hasher = KeyHasher(server_secret)

    url = settings.resolved_database_url
    await migrations.upgrade(url, HISTORY)
    engine = db.create_engine(url)
    repo = Repository(engine)

    tenants = TenantAdmin(repo)
    await tenants.ensure_default()
    await repo.upsert_master(hasher.hash(master_key), display_prefix(master_key), utc_now())
    _log.info("master key ready", key_id=MASTER_KEY_ID, database=engine.dialect.name)

    notifier = KeysChangedNotifier(settings.nats_url, settings.keys_changed_subject)
    notifier.start()
    return App(engine=engine, notifier=notifier,
               admission=Admission(repo, hasher, settings.cache_ttl_seconds),
               keys=KeyAdmin(repo, hasher, notifier), tenants=tenants)
