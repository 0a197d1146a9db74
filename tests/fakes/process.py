"""A fake provider API in its own process, as the e2e stacks and the fuzz runs use it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Generous: a fake imports its provider's SDK types, which takes 25 s on a loaded 2-core machine.
START_SECONDS = 90


class FakeDidNotStart(RuntimeError):
    pass


@contextlib.contextmanager
def fake_process(module: str, directory: Path, *args: str) -> Iterator[str]:
    """Start `python -m module [args]` on a free loopback port; yields its root URL. Its output goes to
    directory/output.txt, whose tail a failed start reports (not a .log: the e2e secret scan
    reads Switchboard's logs, and a provider's fake may print the provider's own key)."""
    port_file, log = directory / "port", directory / "output.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0",
                                 "--port-file", str(port_file), *args], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise FakeDidNotStart(f"the fake provider {module} did not start:\n{tail}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
