"""The real stack for end-to-end tests: Envoy, the five services as processes, NATS, SQLite or
PostgreSQL, and the fake OpenAI upstream as its own process. Started once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from switchboard_stack import Stack, StackConfig

REPO = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def fake_openai(tmp_path_factory):
    """The fake OpenAI API in its own process; yields its base URL (ending in /v1)."""
    port_file = tmp_path_factory.mktemp("fake") / "port"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_upstream", "--host", "127.0.0.1",
                             "--port", "0", "--port-file", str(port_file)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the fake OpenAI upstream did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text().strip()}/v1"
    proc.terminate()
    proc.wait(10)


def _start_stack(data_dir: Path, fake_base_url: str, extra_env: dict[str, str] | None = None) -> Stack:
    env = {"OPENAI_API_KEY": "sk-fake-upstream", "OPENAI_BASE_URL": fake_base_url,
           "SWITCHBOARD_LOG_LEVEL": "INFO", **(extra_env or {})}
    # Each stack gets its own NATS: billing's durable consumer must not share a stream with
    # another stack's billing, or each would take the other's usage events.
    stack = Stack(StackConfig.ephemeral(data_dir, env=env, own_nats=True))
    stack.start()
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory, fake_openai):
    """The suite on SQLite files in a fresh data directory."""
    s = _start_stack(tmp_path_factory.mktemp("stack-sqlite"), fake_openai)
    yield s
    s.stop()


def _postgres_database() -> str | None:
    """A fresh database on the reachable PostgreSQL server, or None when there is none."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2) as conn:
            name = f"sb_e2e_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return None
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory, fake_openai):
    """The suite with auth and billing on PostgreSQL; skipped with a reason when none is reachable."""
    url = _postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} (set SWITCHBOARD_TEST_POSTGRES_URL)")
    s = _start_stack(tmp_path_factory.mktemp("stack-pg"), fake_openai, {
        "SWITCHBOARD_AUTH_DATABASE_URL": url, "SWITCHBOARD_BILLING_DATABASE_URL": url})
    yield s
    s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_stack(request):
    """Runs a test once on each database the machine offers."""
    return request.getfixturevalue("stack" if request.param == "sqlite" else "pg_stack")
