"""Pytest fixtures for suites with a database and NATS; a service's conftest.py imports them.

`database_url` runs a test on SQLite (a file per test) and on PostgreSQL (one scratch database
per run and suite), skipping the PostgreSQL case with the reason when no server is reachable.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from switchboard_common.testing import infra


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin_url = infra.postgres_admin_url()
    if not infra.reachable(admin_url):
        pytest.skip(infra.unreachable_reason("PostgreSQL", admin_url, infra.POSTGRES_VARIABLE))
    with infra.scratch_database(admin_url, "sb_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def nats_url() -> str:
    url = infra.nats_url()
    if not infra.reachable(url):
        pytest.skip(infra.unreachable_reason("NATS", url, infra.NATS_VARIABLE))
    return url


@pytest.fixture
def eventually():
    return infra.eventually


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A database with nothing in it, for one test: a new SQLite file, or a scratch PostgreSQL
    database dropped afterwards (skipped with the reason when no server is reachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = infra.postgres_admin_url()
    if not infra.reachable(admin_url):
        pytest.skip(infra.unreachable_reason("PostgreSQL", admin_url, infra.POSTGRES_VARIABLE))
    with infra.scratch_database(admin_url, "sb_test_empty") as url:
        yield url
