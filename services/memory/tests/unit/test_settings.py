"""Memory settings: the documented default port, and where the database is by default."""

from __future__ import annotations

import os

import pytest

from switchboard_memory.settings import MemorySettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in os.environ:
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


def test_default_port_is_50055():
    assert MemorySettings().grpc_port == 50055


def test_database_defaults_to_sqlite_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    assert MemorySettings().database_url == f"sqlite:///{tmp_path}/memory.db"


def test_database_default_follows_the_default_data_dir():
    settings = MemorySettings()
    assert settings.database_url == f"sqlite:///{settings.data_dir}/memory.db"


def test_database_url_from_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_MEMORY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/memory")
    assert MemorySettings().database_url == "postgresql://postgres@127.0.0.1:5432/memory"


def test_settings_are_frozen():
    settings = MemorySettings()
    with pytest.raises(Exception):  # pydantic's ValidationError for a frozen instance
        settings.database_url = "sqlite:///elsewhere.db"
