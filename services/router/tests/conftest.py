"""Fixtures for the router's tests: the tokenizer (loaded once), NATS, and a running router."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from router_harness import start_router, stop_router  # noqa: E402
from switchboard_router.tokens import Tokenizer  # noqa: E402

NATS_URL = os.environ.get("SWITCHBOARD_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.load()


def nats_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 4222), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def nats_url() -> str:
    if not nats_reachable(NATS_URL):
        pytest.skip(f"NATS is not reachable at {NATS_URL} (set SWITCHBOARD_TEST_NATS_URL)")
    return NATS_URL


@pytest.fixture
async def router(tmp_path, tokenizer, nats_url):
    h = await start_router(tmp_path, tokenizer, nats_url)
    yield h
    await stop_router(h)
