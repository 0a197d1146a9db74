"""Writer.run on SQLite: the consumer's transaction in one worker thread, committed whole or not
at all, and never overlapping another write of the process, even when its caller is cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from switchboard_common import db

from switchboard_billing.writes import Writer


@pytest.fixture
async def writer(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    w = Writer(engine)
    yield w
    await w.close()
    await engine.dispose()


async def _count(w: Writer) -> int:
    async with w.engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()


async def test_a_transaction_that_raises_stores_nothing(writer):
    def half_done(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await writer.run(half_done)
    assert await _count(writer) == 0
    assert await writer.run(lambda conn: conn.execute(text("INSERT INTO t VALUES (2)")).rowcount) == 1
    assert await _count(writer) == 1


async def test_a_cancelled_caller_holds_the_lock_until_the_thread_commits(writer):
    inside, release = threading.Event(), threading.Event()

    def slow(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        inside.set()
        release.wait(5)

    task = asyncio.create_task(writer.run(slow))
    await asyncio.to_thread(inside.wait, 5)
    task.cancel()
    follower = asyncio.create_task(_write_after(writer))
    await asyncio.sleep(0.1)
    assert not follower.done()  # the next write waits for the thread's transaction
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await follower == 1  # it saw the cancelled caller's row, committed


async def _write_after(w: Writer) -> int:
    async with w.begin() as conn:
        return (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
