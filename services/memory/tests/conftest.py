"""Fixtures for memory's tests: SQLite per test and one PostgreSQL database per run, the real
embedder and tokenizer (loaded once), and the use cases wired as bootstrap wires them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from switchboard_common import db, migrations
from switchboard_common.testing.fixtures import (  # noqa: F401 - the fixtures of this suite
    database_url, empty_database_url, eventually, pg_database_url)

from switchboard_memory.collection_repository import CollectionRepository
from switchboard_memory.collections import Collections
from switchboard_memory.context import ContextBuilder
from switchboard_memory.domain import Caller
from switchboard_memory.embedders import Embedders
from switchboard_memory.embedders.minilm import MiniLMEmbedder
from switchboard_memory.index_cache import IndexCache
from switchboard_memory.ingestion import Ingestor
from switchboard_memory.migrations import HISTORY
from switchboard_memory.session_repository import SessionRepository
from switchboard_memory.sessions import Sessions
from switchboard_memory.settings import MemorySettings
from switchboard_memory.tokens import TokenCounter


@pytest.fixture(scope="session")
def tokens() -> TokenCounter:
    return TokenCounter.load()


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own per test: the PostgreSQL database is shared by the run."""
    return "t-" + secrets.token_hex(6)


@dataclass
class Memory:
    settings: MemorySettings
    sessions: Sessions
    collections: Collections
    context: ContextBuilder
    session_repo: SessionRepository
    collection_repo: CollectionRepository
    ingestor: Ingestor

    def caller(self, tenant: str, key_id: str = "key_a") -> Caller:
        return Caller(key_id=key_id, tenant_id=tenant)


def build_memory(engine, settings, embedder, tokens, gateway=None) -> Memory:
    embedders = Embedders(gateway)
    embedders._built[embedder.name] = embedder  # the session-wide instance, loaded once
    session_repo, collection_repo = SessionRepository(engine), CollectionRepository(engine)
    sessions = Sessions(session_repo, embedder, tokens, settings)
    ingestor = Ingestor(collection_repo, embedders, tokens,
                        batch_documents=settings.ingest_batch_documents)
    collections = Collections(collection_repo, embedders, IndexCache(collection_repo, 100_000),
                              ingestor, settings)
    return Memory(settings, sessions, collections,
                  ContextBuilder(sessions, collections, tokens, settings), session_repo,
                  collection_repo, ingestor)


@pytest.fixture
def memory_settings(tmp_path, database_url) -> MemorySettings:
    return MemorySettings(data_dir=tmp_path, database_url=database_url)


@pytest.fixture
async def memory(memory_settings, embedder, tokens):
    await migrations.upgrade(memory_settings.database_url, HISTORY)
    engine = db.create_engine(memory_settings.database_url)
    built = build_memory(engine, memory_settings, embedder, tokens)
    yield built
    await built.ingestor.stop()
    await engine.dispose()
