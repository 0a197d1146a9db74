"""Memory's alembic history: it makes exactly the tables in tables.py on SQLite and PostgreSQL,
concurrent starts migrate once, and the wheel ships it."""

from __future__ import annotations

from switchboard_common.testing.schema import (  # noqa: F401 - pytest collects them here
    test_concurrent_starts_migrate_once, test_migrations_make_exactly_the_declared_tables,
    test_the_wheel_ships_the_migrations)

# What the scenarios migrate and compare against (they read them from this module).
from switchboard_memory.migrations import HISTORY  # noqa: F401
from switchboard_memory.tables import metadata as METADATA  # noqa: F401
