"""Billing's alembic history: it makes exactly the tables in tables.py on SQLite and PostgreSQL,
concurrent starts migrate once, a pre-migration database is adopted, and the wheel ships it."""

from __future__ import annotations

from switchboard_common.testing.schema import (  # noqa: F401 - pytest collects them here
    test_a_database_made_by_create_all_is_adopted, test_concurrent_starts_migrate_once,
    test_migrations_make_exactly_the_declared_tables, test_the_wheel_ships_the_migrations)

# What the scenarios migrate and compare against (they read them from this module).
from switchboard_billing.migrations import HISTORY  # noqa: F401
from switchboard_billing.tables import metadata as METADATA  # noqa: F401
