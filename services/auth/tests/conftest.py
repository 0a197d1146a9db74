"""Fixtures for auth's tests: databases (SQLite per test, one PostgreSQL database per run) and NATS."""

from __future__ import annotations

from switchboard_common.testing.fixtures import (  # noqa: F401 - the fixtures of this suite
    database_url, empty_database_url, eventually, nats_url, pg_database_url)
