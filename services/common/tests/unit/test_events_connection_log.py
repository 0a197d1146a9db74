"""NATS connection callbacks: one short warning per kind of error per interval, not a flood."""

from __future__ import annotations

from switchboard_common.events import ConnectionLog


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def warning(self, event: str, **fields) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields) -> None:
        self.lines.append(("info", event, fields))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_warning_per_kind_of_error_per_interval():
    log, clock = Recorder(), Clock()
    conn = ConnectionLog("switchboard-test", interval=30, clock=clock, logger=log)
    for _ in range(60):  # thirty seconds of reconnect attempts, two a second
        await conn.error(ConnectionRefusedError(111, "Connect call failed"))
        await conn.error(TimeoutError())
        clock.now += 0.5
    assert [(level, event, f["error"], f["repeats"]) for level, event, f in log.lines] == [
        ("warning", "nats error", "ConnectionRefusedError", 0),
        ("warning", "nats error", "TimeoutError", 0),
    ]
    assert log.lines[0][2]["client"] == "switchboard-test"
    assert "Connect call failed" in log.lines[0][2]["detail"]

    await conn.error(ConnectionRefusedError(111, "Connect call failed"))  # 30 s later: again
    assert log.lines[-1][2]["error"] == "ConnectionRefusedError"
    assert log.lines[-1][2]["repeats"] == 59  # what was held back is counted, not lost
    assert len(log.lines) == 3


async def test_a_reconnect_makes_the_next_outage_report_at_once():
    log, clock = Recorder(), Clock()
    conn = ConnectionLog("switchboard-test", interval=30, clock=clock, logger=log)
    await conn.error(OSError("down"))
    await conn.disconnected()
    await conn.reconnected()
    clock.now += 1
    await conn.error(OSError("down again"))
    assert [(level, event) for level, event, _ in log.lines] == [
        ("warning", "nats error"), ("info", "nats disconnected"), ("info", "nats reconnected"),
        ("warning", "nats error")]
    assert log.lines[-1][2]["repeats"] == 0


async def test_long_details_are_cut_short():
    log = Recorder()
    await ConnectionLog("c", logger=log).error(RuntimeError("x" * 5000))
    assert len(log.lines[0][2]["detail"]) == 200
