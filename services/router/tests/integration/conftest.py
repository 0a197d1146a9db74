"""Fixtures the router's integration tests share: a real memory process (SQLite) to point the
router at."""

from __future__ import annotations

import pytest
from switchboard_common.testing.processes import ServiceProcess


@pytest.fixture
def memory(tmp_path):
    (tmp_path / "memory-data").mkdir()
    process = ServiceProcess("memory", "switchboard.memory.v1.StoredResponseService",
                             tmp_path / "memory-data", {"SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.2"})
    try:
        process.wait_serving(60)
        yield process
    finally:
        process.kill()
