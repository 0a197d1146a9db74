"""The instant upstream: the fake OpenAI API in its own process, optionally pinned to a core."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cpu

REPO = Path(__file__).resolve().parents[1]


class FakeUpstream:
    """`python -m tests.fakes.openai_upstream` on 127.0.0.1, a free port, stopped on exit."""

    def __init__(self, core: int | None, start_timeout: float = 15.0):
        self.core = core
        self._start_timeout = start_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="switchboard-bench-fake-")
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> FakeUpstream:
        port_file = Path(self._dir.name) / "port"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.openai_upstream", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file)],
            cwd=REPO, stdout=subprocess.DEVNULL)
        try:
            port = self._wait_for_port(port_file)
        except BaseException:
            self.__exit__()
            raise
        if self.core is not None:
            cpu.pin([self.pid], {self.core})
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()

    def _wait_for_port(self, port_file: Path) -> int:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if port_file.exists():
                return int(port_file.read_text())
            if self._process.poll() is not None:
                raise RuntimeError(f"fake upstream exited with {self._process.returncode}")
            time.sleep(0.05)
        raise TimeoutError(f"fake upstream did not listen within {self._start_timeout} s")
