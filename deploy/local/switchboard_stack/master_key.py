"""The master key: SWITCHBOARD_MASTER_KEY, or one generated on first run and kept in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(data_dir: Path) -> tuple[str, bool]:
    """(key, created): created is True when this run generated it (so the user must be shown it)."""
    if key := os.environ.get("SWITCHBOARD_MASTER_KEY"):
        return key, False
    path = data_dir / "master-key"
    if path.exists():
        return path.read_text().strip(), False
    key = "sk-sb-master-" + secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, True
