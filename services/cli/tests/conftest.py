"""Fixtures for the CLI's tests: the fake gateway, and `run`, which invokes `switchboard` against it
with a clean environment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent / "support"))

from cli_fakes import CALLER_KEY, FakeGateway
from switchboard_cli.main import cli
from switchboard_cli.session import Session


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def run(gateway: FakeGateway, tmp_path) -> Callable[..., Result]:
    """`switchboard ARGS` against the fake, with none of the developer's SWITCHBOARD_* variables."""
    def invoke(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        clean: dict[str, str | None] = {"SWITCHBOARD_URL": None, "SWITCHBOARD_MASTER_KEY": None,
                                        "SWITCHBOARD_API_KEY": CALLER_KEY,
                                        "SWITCHBOARD_DATA_DIR": str(tmp_path / "no-data")}
        session = Session(transport=httpx.MockTransport(gateway.handle))
        return CliRunner().invoke(cli, list(args), obj=session, env={**clean, **(env or {})}, input=input)
    return invoke
