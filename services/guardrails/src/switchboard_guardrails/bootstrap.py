"""The composition root: builds the engine, the auth client, the detectors' shared parts (PII
engine, injection classifier, moderation client) and the use cases, once, at start."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations
from switchboard_common.admission import Admission, VerdictCache
from switchboard_common.auth_client import AuthClient

from switchboard_guardrails.access import Access
from switchboard_guardrails.checks.base import Toolkit
from switchboard_guardrails.checks.classifier import INDIRECT_MODEL_PATH, Classifier
from switchboard_guardrails.checks.moderation import ModerationClient
from switchboard_guardrails.checks.pii.engine import PiiEngine
from switchboard_guardrails.migrations import HISTORY
from switchboard_guardrails.policies import PolicyAdmin
from switchboard_guardrails.repository import PolicyRepository
from switchboard_guardrails.resolver import PolicyResolver
from switchboard_guardrails.settings import GuardrailsSettings

_log = structlog.get_logger("bootstrap")
_CACHED_VERDICTS = 10_000


@dataclass
class App:
    engine: AsyncEngine
    auth: AuthClient
    toolkit: Toolkit
    admin: PolicyAdmin
    resolver: PolicyResolver

    async def close(self) -> None:
        if self.toolkit.moderation is not None:
            await self.toolkit.moderation.close()
        await self.auth.close()
        await self.engine.dispose()


def build_toolkit(settings: GuardrailsSettings) -> Toolkit:
    """The detectors' shared parts, loaded once: never per request."""
    started = time.perf_counter()
    moderation = None
    if settings.moderation_base_url:
        moderation = ModerationClient(settings.moderation_base_url,
                                      settings.moderation_api_key.get_secret_value(),
                                      settings.moderation_model, settings.moderation_timeout_seconds)
    toolkit = Toolkit(pii=PiiEngine(settings.phone_region_list), classifier=Classifier.load(),
                      indirect=Classifier.load(INDIRECT_MODEL_PATH), moderation=moderation)
    _log.info("detectors loaded", seconds=round(time.perf_counter() - started, 2))
    return toolkit


async def build(settings: GuardrailsSettings, toolkit: Toolkit | None = None) -> App:
    """Everything guardrails needs, with the schema migrated (tests hand in a toolkit they built
    once for the session)."""
    url = settings.resolved_database_url
    await migrations.upgrade(url, HISTORY)
    engine = db.create_engine(url)
    repo = PolicyRepository(engine)
    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    # Refusals are not kept (refusal_ttl=0): the admin routes answer few calls, none is hot.
    access = Access(Admission(auth.authorize, VerdictCache(_CACHED_VERDICTS),
                              default_ttl=settings.auth_cache_seconds,
                              max_ttl=settings.auth_cache_seconds, refusal_ttl=0))
    toolkit = toolkit or build_toolkit(settings)
    resolver = PolicyResolver(repo, toolkit, settings.policy_cache_seconds)
    admin = PolicyAdmin(repo, access, toolkit, on_change=resolver.drop)
    _log.info("guardrails ready", database=engine.dialect.name, auth_target=settings.auth_target,
              moderation=settings.moderation_base_url or "keywords only (warn)")
    return App(engine=engine, auth=auth, toolkit=toolkit, admin=admin, resolver=resolver)
