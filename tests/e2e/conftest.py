"""The real stack for end-to-end tests: Envoy, the five services as processes, NATS, SQLite or
PostgreSQL, and the fake OpenAI upstream as its own process. Started once per test session."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from switchboard_common.testing.infra import (
    POSTGRES_VARIABLE,
    postgres_admin_url,
    reachable,
    scratch_database,
    unreachable_reason,
)

from switchboard_stack import Stack, StackConfig

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory, fake_openai):
    """The suite with auth and billing on PostgreSQL; skipped with a reason when none is reachable."""
    admin_url = postgres_admin_url()
    if not reachable(admin_url):
        pytest.skip(unreachable_reason("PostgreSQL", admin_url, POSTGRES_VARIABLE))
    with scratch_database(admin_url, "sb_e2e") as url:
        s = _start_stack(tmp_path_factory.mktemp("stack-pg"), fake_openai, {
            "SWITCHBOARD_AUTH_DATABASE_URL": url, "SWITCHBOARD_BILLING_DATABASE_URL": url})
        yield s
        s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_stack(request):
    """Runs a test once on each database the machine offers."""
    return request.getfixturevalue("stack" if request.param == "sqlite" else "pg_stack")
