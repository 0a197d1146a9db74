"""Guardrails settings: the documented default port, and the service prefix winning."""

from __future__ import annotations

import os

import pytest

from switchboard_guardrails.settings import GuardrailsSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in os.environ:
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


def test_default_port_is_50054():
    assert GuardrailsSettings().grpc_port == 50054


def test_service_prefix_wins_over_suite_wide(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_GRPC_PORT", "1111")
    monkeypatch.setenv("SWITCHBOARD_GUARDRAILS_GRPC_PORT", "2222")
    assert GuardrailsSettings().grpc_port == 2222
