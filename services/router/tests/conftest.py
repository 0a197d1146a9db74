"""Fixtures for the router's tests: the tokenizer (loaded once), NATS, and a running router."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from switchboard_common.testing.infra import NATS_VARIABLE, nats_url as configured_nats_url
from switchboard_common.testing.infra import reachable, unreachable_reason

sys.path.insert(0, str(Path(__file__).parent / "support"))

from router_harness import start_router, stop_router
from switchboard_router.tokens import Tokenizer


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.load()


@pytest.fixture
def nats_url() -> str:
    url = configured_nats_url()
    if not reachable(url):
        pytest.skip(unreachable_reason("NATS", url, NATS_VARIABLE))
    return url


@pytest.fixture
async def router(tmp_path, tokenizer, nats_url):
    h = await start_router(tmp_path, tokenizer, nats_url)
    yield h
    await stop_router(h)
