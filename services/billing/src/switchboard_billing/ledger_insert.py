"""The ledger's hot insert: a fetch's usage records in a few statements whatever their number,
skipping event ids already stored, and saying which were new.

SQLAlchemy's executemany of an `insert()` builds and processes a parameter dict per row (about
12 µs a row, more than the database's own work), so the rows go to the driver as tuples in column
order, through the same bind processors SQLAlchemy would apply (the UTC datetime, booleans):
- PostgreSQL: one INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT DO NOTHING
  RETURNING event_id. Its text is the same for any row count (prepared once), and ON CONFLICT
  keeps it exact when two billing replicas store the same event at once.
- SQLite: which ids are stored already (one SELECT over json_each of the ids; JSON is built
  into SQLite since 3.38), then one executemany of a plain INSERT of the others. This process
  writes one transaction at a time (`Writer`); should another process on the same file store
  one of these ids between the two statements, the INSERT fails on the primary key, and the
  consumer stores that fetch's records one by one, each skipped when stored: never twice.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence

from sqlalchemy import Boolean, Connection
from sqlalchemy.engine import Dialect

from switchboard_billing.domain import UsageEntry
from switchboard_billing.tables import usage_records as usage

_NAMES = tuple(column.name for column in usage.columns)
_values = operator.attrgetter(*_NAMES)  # an entry's values in column order, as one tuple


class LedgerInsert:
    def __init__(self, dialect: Dialect) -> None:
        self._postgresql = dialect.name == "postgresql"
        # A Boolean's processor only checks (and on SQLite makes an int of) what the driver
        # takes as it is when it is a bool already, as decoded events' are.
        self._processors = [
            (i, processor, bool if isinstance(column.type, Boolean) else None)
            for i, column in enumerate(usage.columns)
            if (processor := column.type._cached_bind_processor(dialect))]
        names = ", ".join(_NAMES)
        if self._postgresql:
            arrays = ", ".join(f"${i}::{column.type.compile(dialect)}[]"
                               for i, column in enumerate(usage.columns, start=1))
            self._insert = (f"INSERT INTO {usage.name} ({names}) SELECT * FROM unnest({arrays}) "
                            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
        else:
            marks = ", ".join("?" for _ in _NAMES)
            self._insert = f"INSERT INTO {usage.name} ({names}) VALUES ({marks})"
            self._stored = (f"SELECT event_id FROM {usage.name} "
                            "WHERE event_id IN (SELECT value FROM json_each(?))")

    def new_in(self, conn: Connection, entries: Sequence[UsageEntry]) -> set[str]:
        """Insert inside the caller's transaction (`Writer.run`); returns the event ids that
        were new. A batch carrying one event twice keeps the first."""
        unique: dict[str, UsageEntry] = {}
        for entry in entries:
            unique.setdefault(entry.event_id, entry)
        if not unique:
            return set()
        if self._postgresql:
            columns = [list(values) for values in zip(*self._rows(unique.values()), strict=True)]
            result = conn.exec_driver_sql(self._insert, tuple(columns))
            return {row[0] for row in result}
        stored = conn.exec_driver_sql(self._stored, (json.dumps(list(unique)),))
        for (event_id,) in stored:
            del unique[event_id]
        if unique:
            conn.exec_driver_sql(self._insert, self._rows(unique.values()))
        return set(unique)

    def _rows(self, entries) -> list[tuple]:
        processors = self._processors
        rows = []
        for entry in entries:
            row = list(_values(entry))
            for i, processor, as_is in processors:
                if type(row[i]) is not as_is:
                    row[i] = processor(row[i])
            rows.append(tuple(row))
        return rows
