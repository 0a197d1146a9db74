"""Recall@k through the service's own parts: turns stored and read back by `Sessions` and ranked
by `window.relevant` (what BuildContext recalls), documents ingested and queried by `Collections`
(what RAG injects), each on a SQLite file in a scratch directory."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from switchboard_common import db, migrations

from switchboard_memory import window
from switchboard_memory.collection_repository import CollectionRepository
from switchboard_memory.collections import Collections
from switchboard_memory.domain import Caller, DocumentInput
from switchboard_memory.embedders import Embedders
from switchboard_memory.evaluation import generated, locomo
from switchboard_memory.index_cache import IndexCache
from switchboard_memory.ingestion import Ingestor
from switchboard_memory.migrations import HISTORY
from switchboard_memory.session_repository import SessionRepository
from switchboard_memory.sessions import NewTurn, Sessions
from switchboard_memory.settings import MemorySettings
from switchboard_memory.tokens import TokenCounter

KS = (1, 5, 10)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = "eval"


@dataclass
class Recall:
    name: str
    questions: int
    hits: dict[int, int]
    seconds: float

    def at(self, k: int) -> float:
        return self.hits[k] / self.questions if self.questions else 0.0


class Harness:
    """The service's parts on a scratch SQLite file."""

    def __init__(self, directory: Path, embedders: Embedders, tokens: TokenCounter) -> None:
        self.settings = MemorySettings(data_dir=directory, session_max_turns=100_000,
                                       session_ttl_seconds=0, ingest_wait_seconds=3600)
        self._embedders = embedders
        self._tokens = tokens

    async def __aenter__(self) -> Harness:
        await migrations.upgrade(self.settings.database_url, HISTORY)
        self.engine = db.create_engine(self.settings.database_url)
        embedder = self._embedders.local(self.settings.default_embedding_model)
        self.sessions = Sessions(SessionRepository(self.engine), embedder, self._tokens,
                                 self.settings)
        repo = CollectionRepository(self.engine)
        self.ingestor = Ingestor(repo, self._embedders, self._tokens, batch_documents=64)
        self.collections = Collections(repo, self._embedders, IndexCache(repo, 10_000_000),
                                       self.ingestor, self.settings)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ingestor.stop()
        await self.engine.dispose()

    async def store(self, session_id: str, messages: Sequence[dict]) -> None:
        """One message per turn, in order (as LoCoMo's lines are)."""
        for i, message in enumerate(messages):
            await self.sessions.append(NewTurn(
                tenant_id=TENANT, key_id="eval", session_id=session_id, turn_id=f"{i:06d}",
                messages=[message], answer=None, started_at=T0 + timedelta(seconds=i)))

    async def ranked_turns(self, session_id: str, questions: Sequence[str], k: int):
        _, turns = await self.sessions.history(TENANT, session_id, vectors=True)
        embedder = self.sessions.embedder
        vectors = await embedder.embed(list(questions))
        return [[t.turn_id for t in window.relevant(turns, q, v, k, embedder.dimensions)]
                for q, v in zip(questions, vectors, strict=True)]


def _count(ranked: list[str], wanted: set[str], hits: dict[int, int]) -> None:
    for k in KS:
        if wanted & set(ranked[:k]):
            hits[k] += 1


async def session_recall(h: Harness, conversations: list[generated.Conversation]) -> Recall:
    start, hits, n = time.perf_counter(), dict.fromkeys(KS, 0), 0
    for c, conv in enumerate(conversations):
        messages = [m for user, assistant in conv.turns for m in (
            {"role": "user", "content": user}, {"role": "assistant", "content": assistant})]
        await h.store(f"gen-{c}", messages)
        ranked = await h.ranked_turns(f"gen-{c}", [q for q, _ in conv.questions], max(KS))
        for (_, turn), found in zip(conv.questions, ranked, strict=True):
            # The fact is the user message of that turn: stored as message 2 * turn.
            _count(found, {f"{2 * turn:06d}"}, hits)
            n += 1
    return Recall("session memory (generated)", n, hits, time.perf_counter() - start)


async def rag_recall(h: Harness, corpus: generated.Corpus) -> Recall:
    start, hits = time.perf_counter(), dict.fromkeys(KS, 0)
    caller = Caller(key_id="eval", tenant_id=TENANT)
    await h.collections.create(caller, "generated", "", 64, 16)
    await h.collections.add_documents(TENANT, "generated", [
        DocumentInput(doc_id, text) for doc_id, text in corpus.documents])
    facts = {doc_id: _fact_of(text) for doc_id, text in corpus.documents}
    for question, doc_id in corpus.questions:
        found = await h.collections.query(TENANT, "generated", question, max(KS))
        ranked = [f"{c.document_id}#{c.chunk_index}" for c in found]
        wanted = {f"{c.document_id}#{c.chunk_index}" for c in found
                  if c.document_id == doc_id and facts[doc_id] in c.text}
        _count(ranked, wanted, hits)
    return Recall("RAG (generated)", len(corpus.questions), hits, time.perf_counter() - start)


def _fact_of(text: str) -> str:
    for statement, _ in generated.DOC_FACTS:
        head = statement.split("{")[0]
        for sentence in text.split("\n\n"):
            if sentence.startswith(head):
                return sentence[:60]
    return "\x00"  # a document without a planted fact


async def locomo_recall(h: Harness, path: Path) -> Recall:
    start, hits, n = time.perf_counter(), dict.fromkeys(KS, 0), 0
    for d, dialogue in enumerate(locomo.load(path)):
        messages = [{"role": "user" if line.speaker == dialogue.speaker_a else "assistant",
                     "content": f"{line.speaker}: {line.text}"} for line in dialogue.lines]
        await h.store(f"locomo-{d}", messages)
        ids = [line.dia_id for line in dialogue.lines]
        ranked = await h.ranked_turns(f"locomo-{d}", [q for q, _ in dialogue.questions], max(KS))
        for (_, evidence), found in zip(dialogue.questions, ranked, strict=True):
            _count([ids[int(t)] for t in found], evidence, hits)
            n += 1
    return Recall("session memory (LoCoMo-10 evidence)", n, hits, time.perf_counter() - start)


async def evaluate(locomo_path: Path | None, small: bool = False) -> list[Recall]:
    tokens = TokenCounter.load()
    embedders = Embedders(None)
    results = []
    with tempfile.TemporaryDirectory(prefix="memory-eval-") as directory:
        async with Harness(Path(directory), embedders, tokens) as h:
            results.append(await session_recall(h, generated.conversations(
                count=4 if small else 20)))
            results.append(await rag_recall(h, generated.corpus(
                documents=60 if small else 300, facts=15 if small else 60)))
            if locomo_path is not None:
                results.append(await locomo_recall(h, locomo_path))
    embedders.close()
    return results
