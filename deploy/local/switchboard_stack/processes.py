"""Child processes of the local stack: start with a log file, wait until healthy, stop gently.

A child's stdout and stderr reach its log file through a pipe the launcher reads, masking
secrets on the way (switchboard_common.redaction): grpc-core writes its own lines (traces that
print raw metadata) to stderr past Python's logging, where no log filter can see them.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard_common.redaction import redact_bytes

_CHUNK = 64 * 1024
_LONGEST_LINE = 1024 * 1024  # a line longer than this is written in pieces
_PIPE_BYTES = 1024 * 1024


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._copier: threading.Thread | None = None
        self._log_start = 0  # where this start's lines begin in the log file

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        # Own process group: Ctrl-C in the terminal reaches the launcher, which stops children in order.
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        try:  # room for a burst of lines while the copier waits for the GIL: the child never blocks
            fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass
        self._copier = threading.Thread(target=_copy_masked, args=(self.proc.stdout, self.log_path),
                                        name=f"log-{self.name}", daemon=True)
        self._copier.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this start wrote (not an earlier start's, whose errors may be fixed)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> float:
        """Seconds until `probe` passed; raises with the log's tail if the process died first."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is None or not self.alive():
                code = self.proc.returncode if self.proc else None
                self._flush_log()
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_tail()}")
            if probe():
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy after {timeout}s:\n{self.log_tail()}")

    def terminate(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: a service's graceful shutdown with its lame duck; SIGINT: without it."""
        if self.proc is not None and self.alive():
            self.proc.send_signal(sig)

    def wait_stopped(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._flush_log()
        return code

    def _flush_log(self) -> None:
        """Wait (briefly) until the copier wrote what the exited process left in the pipe."""
        if self._copier is not None:
            self._copier.join(timeout=5)


def rotate_logs(logs: Path) -> None:
    """Keep the previous run's logs as `<name>.log.1`, so this run's files hold this run only."""
    for log in logs.glob("*.log"):
        log.replace(log.with_name(log.name + ".1"))


def _copy_masked(pipe: IO[bytes], path: Path) -> None:
    """Copy whole lines from `pipe` to `path`, secrets masked, until the process closes it."""
    pending = b""
    with pipe, path.open("ab") as log:
        while chunk := os.read(pipe.fileno(), _CHUNK):
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if not cut and len(pending) < _LONGEST_LINE:
                continue
            cut = cut or len(pending)
            log.write(redact_bytes(pending[:cut]))
            log.flush()
            pending = pending[cut:]
        if pending:
            log.write(redact_bytes(pending))


def grpc_serving(target: str, service: str = "") -> Callable[[], bool]:
    def probe() -> bool:
        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=0.5)
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    return probe


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    return probe
