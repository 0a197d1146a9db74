"""A real stack for `make fuzz` outside pytest: the fake OpenAI upstream and the whole suite."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from switchboard_stack import Stack, StackConfig

from tests.fakes.process import fake_process

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def fake_upstream(work: Path) -> Iterator[str]:
    """The fake OpenAI API in its own process; yields its base URL (ending in /v1)."""
    with fake_process("tests.fakes.openai_upstream", work) as url:
        yield url + "/v1"


@contextlib.contextmanager
def running_stack(work: Path | None = None) -> Iterator[Stack]:
    """The same stack as the e2e `stack` fixture, on fresh ports and a fresh data directory."""
    with contextlib.ExitStack() as exits:
        if work is None:
            work = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="sb-fuzz-")))
        base_url = exits.enter_context(fake_upstream(work))
        env = {"OPENAI_API_KEY": "sk-fake-upstream", "OPENAI_BASE_URL": base_url,
               "SWITCHBOARD_LOG_LEVEL": "INFO"}
        stack = Stack(StackConfig.ephemeral(work / "stack", env=env, own_nats=True))
        stack.start()
        exits.callback(stack.stop)
        yield stack
