"""The composition root: the one place that builds the memory object graph."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db, migrations
from switchboard_common.admission import Admission, VerdictCache
from switchboard_common.auth_client import AuthClient

from switchboard_memory.access import Access
from switchboard_memory.collection_repository import CollectionRepository
from switchboard_memory.collections import Collections
from switchboard_memory.context import ContextBuilder
from switchboard_memory.embedders import Embedders
from switchboard_memory.gateway_client import GatewayClient
from switchboard_memory.index_cache import IndexCache
from switchboard_memory.ingestion import Ingestor
from switchboard_memory.migrations import HISTORY
from switchboard_memory.response_repository import ResponseRepository
from switchboard_memory.response_servicer import StoredResponseServicer
from switchboard_memory.servicer import MemoryServicer
from switchboard_memory.session_repository import SessionRepository
from switchboard_memory.sessions import Sessions
from switchboard_memory.settings import MemorySettings
from switchboard_memory.stored_responses import StoredResponses
from switchboard_memory.summaries import Summarizer
from switchboard_memory.tokens import TokenCounter

_log = structlog.get_logger("bootstrap")
_CACHED_VERDICTS = 10_000


@dataclass
class App:
    servicer: MemoryServicer
    responses: StoredResponseServicer
    engine: AsyncEngine
    auth: AuthClient
    embedders: Embedders
    ingestor: Ingestor
    gateway: GatewayClient | None = None
    summarizer: Summarizer | None = None
    background: list[asyncio.Task] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.ingestor.stop()
        if self.summarizer is not None:
            await self.summarizer.stop()
        if self.gateway is not None:
            await self.gateway.close()
        await self.auth.close()
        self.embedders.close()
        await self.engine.dispose()


async def build(settings: MemorySettings, *, sweep: bool = True) -> App:
    """Everything memory needs, with the schema migrated and the retention sweep started."""
    await migrations.upgrade(settings.database_url, HISTORY)
    engine = db.create_engine(settings.database_url)
    tokens = await asyncio.to_thread(TokenCounter.load)
    gateway = (GatewayClient(settings.gateway_url, settings.gateway_key.get_secret_value(),
                             settings.gateway_timeout_seconds) if settings.gateway_url else None)
    embedders = Embedders(gateway, settings.embed_threads)
    # Loaded now, not on the first request: a missing model fails the start, not a user's call.
    session_embedder = await asyncio.to_thread(embedders.local, settings.default_embedding_model)

    session_repo = SessionRepository(engine)
    summarizer = (Summarizer(session_repo, gateway, settings)
                  if settings.summary_model and gateway is not None else None)
    sessions = Sessions(session_repo, session_embedder, tokens, settings,
                        on_stored=summarizer.schedule if summarizer else lambda t, s: None)
    collection_repo = CollectionRepository(engine)
    ingestor = Ingestor(collection_repo, embedders, tokens,
                        batch_documents=settings.ingest_batch_documents)
    collections = Collections(collection_repo, embedders,
                              IndexCache(collection_repo, settings.index_cache_chunks), ingestor,
                              settings)
    auth = AuthClient(settings.auth_target, settings.auth_timeout_seconds)
    # Refusals are not kept (refusal_ttl=0): admin calls are few, and none is hot.
    access = Access(Admission(auth.authorize, VerdictCache(_CACHED_VERDICTS),
                              default_ttl=settings.auth_cache_seconds,
                              max_ttl=settings.auth_cache_seconds, refusal_ttl=0))
    servicer = MemoryServicer(access, sessions, collections,
                              ContextBuilder(sessions, collections, tokens, settings))
    stored_responses = StoredResponses(ResponseRepository(engine), settings)
    app = App(servicer=servicer, responses=StoredResponseServicer(stored_responses),
              engine=engine, auth=auth, embedders=embedders, ingestor=ingestor, gateway=gateway,
              summarizer=summarizer)
    if sweep and settings.session_ttl_seconds:
        app.background.append(asyncio.create_task(sessions.sweep_forever()))
    if sweep and settings.response_ttl_seconds:
        app.background.append(asyncio.create_task(stored_responses.sweep_forever()))
    _log.info("memory ready", database=engine.dialect.name, auth_target=settings.auth_target,
              embedder=session_embedder.name, summaries=bool(summarizer))
    return app
