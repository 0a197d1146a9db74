"""A durable local outbox: events that could not be published wait here until NATS is back.

It is a small SQLite file owned by one process, so the stdlib driver in a worker thread is enough.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, subject TEXT NOT NULL,"
            " msg_id TEXT NOT NULL, payload BLOB NOT NULL, created_at REAL NOT NULL)")
        self._lock = asyncio.Lock()

    async def put(self, subject: str, msg_id: str, payload: bytes) -> None:
        async with self._lock:
            await asyncio.to_thread(
                self._db.execute, "INSERT INTO outbox (subject, msg_id, payload, created_at)"
                " VALUES (?, ?, ?, ?)", (subject, msg_id, payload, time.time()))

    async def batch(self, limit: int = 100) -> list[tuple[int, str, str, bytes]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._db.execute(
                "SELECT id, subject, msg_id, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall())

    async def remove(self, row_id: int) -> None:
        async with self._lock:
            await asyncio.to_thread(self._db.execute, "DELETE FROM outbox WHERE id = ?", (row_id,))

    async def size(self) -> int:
        async with self._lock:
            return await asyncio.to_thread(
                lambda: self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()
