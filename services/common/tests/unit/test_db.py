"""Engines and column types every service's storage uses (real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select

from switchboard_common import db
from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()
times = Table("times", metadata, Column("id", Integer, primary_key=True),
              Column("at", UtcDateTime, nullable=True))


async def test_utc_datetimes_round_trip_aware_in_utc(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'times.db'}")  # dirs made
    try:
        await db.create_schema(engine, metadata)
        plus_two = datetime(2025, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
        async with engine.begin() as conn:
            await conn.execute(times.insert(), [{"id": 1, "at": plus_two}, {"id": 2, "at": None}])
            rows = dict((await conn.execute(select(times.c.id, times.c.at))).all())
        assert rows == {1: datetime(2025, 2, 28, 23, 30, tzinfo=UTC), 2: None}
        assert rows[1].tzinfo is UTC
        with pytest.raises(Exception, match="naive datetime"):
            async with engine.begin() as conn:
                await conn.execute(times.insert(), {"id": 3, "at": datetime(2025, 1, 1)})
    finally:
        await engine.dispose()
    assert (tmp_path / "a" / "b" / "times.db").exists()
