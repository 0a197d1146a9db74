"""Fixtures for guardrails' tests: the detectors' shared parts built once per session (the PII
engine takes a second or two), SQLite per test and one PostgreSQL database per run."""

from __future__ import annotations

import pytest

from switchboard_common.testing.fixtures import (  # noqa: F401 - the fixtures of this suite
    database_url, empty_database_url, pg_database_url)

from switchboard_guardrails.bootstrap import build_toolkit
from switchboard_guardrails.settings import GuardrailsSettings


@pytest.fixture(scope="session")
def toolkit():
    return build_toolkit(GuardrailsSettings())


@pytest.fixture(scope="session")
def pii(toolkit):
    return toolkit.pii
