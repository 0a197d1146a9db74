"""events.connect against a dead NATS: its callbacks report, and a caller's own win."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from switchboard_common import events
from switchboard_common.testing.infra import free_port


async def test_a_callers_error_cb_replaces_the_default():
    seen: list[Exception] = []

    async def mine(exc: Exception) -> None:
        seen.append(exc)

    task = asyncio.create_task(events.connect(f"nats://127.0.0.1:{free_port()}", "switchboard-test",
                                              error_cb=mine))
    try:
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    assert seen and isinstance(seen[0], OSError)
