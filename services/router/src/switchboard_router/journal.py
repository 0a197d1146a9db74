"""The router's usage journal: each admitted request is written down when it is admitted, as it
goes (tokens so far, for requests still open after a progress tick) and when it ends; what
JetStream acked is forgotten. It is also the outbox: while NATS is away, ended events wait here.

Replayed at start: a request admitted but never closed (the router was killed) becomes an event
with what was known and outcome INTERRUPTED; ended events JetStream never acked are sent again
(the event id is the JetStream message id and billing's key, so a re-send is never counted twice).
Only ids and counts are written for usage: never a prompt or a completion (the journal is on
disk). A streamed session request's turn is the one exception: the messages and the answer so far
(what memory stores anyway), so a crash still stores the turn, once (memory keys it by its turn id);
it is forgotten when memory has it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from prometheus_client import Gauge
from switchboard.events.v1 import events_pb2
from switchboard_common.journal import SegmentLog

_log = structlog.get_logger("journal")

# Record kinds. OPENED and PROGRESS hold the event as it would read if the request were cut now
# (outcome INTERRUPTED); ENDED holds the event as published; ACKED holds event ids, one a line.
OPENED, PROGRESS, ENDED, ACKED = 1, 2, 3, 4
# TURN holds "<turn id>\n" and then the turn as memory would store it if the request were cut now
# (an opaque payload: remembering.py's); TURN_STORED holds turn ids memory has, one a line.
TURN, TURN_STORED = 5, 6

LIVE = Gauge("switchboard_router_journal_entries",
             "Requests open or ended but not yet acked by JetStream, held in the usage journal")


@dataclass(slots=True)
class _Entry:
    state: bytes  # the latest OPENED/PROGRESS payload
    ended: bytes | None = None  # the ENDED payload, once the request is over


class UsageJournal:
    def __init__(self, log: SegmentLog) -> None:
        self._log = log
        self._live: dict[str, _Entry] = {}
        self._turns: dict[str, bytes] = {}  # turn id -> its latest TURN payload, until stored
        LIVE.set_function(lambda: len(self._live))

    @property
    def directory(self):
        return self._log.directory

    def recover(self) -> list[tuple[str, bytes]]:
        """Replay the segments, close what a crash cut, start writing; returns (event id,
        payload) of every event still to publish, oldest first."""
        for kind, payload in self._log.replay():
            self._apply(kind, payload)
        interrupted = 0
        for entry in self._live.values():
            if entry.ended is None:
                entry.ended = entry.state  # already shaped as the interrupted event
                interrupted += 1
        self._log.open(self._checkpoint)
        pending = [(event_id, entry.ended) for event_id, entry in self._live.items()
                   if entry.ended is not None]
        if pending or self._turns:
            _log.info("usage journal replayed", interrupted=interrupted,
                      unacked=len(pending) - interrupted, unstored_turns=len(self._turns),
                      directory=str(self._log.directory))
        return pending

    def unstored_turns(self) -> list[tuple[str, bytes]]:
        """After `recover`: (turn id, payload) of the turns memory may not have (cut by a crash,
        or their append failed), oldest first; each stays until `turn_stored` says otherwise."""
        return list(self._turns.items())

    def _apply(self, kind: int, payload: bytes) -> None:
        if kind == TURN:
            head, _, turn = payload.partition(b"\n")
            self._turns[head.decode()] = turn
            return
        if kind == TURN_STORED:
            for stored in payload.decode().split("\n"):
                self._turns.pop(stored, None)
            return
        if kind == ACKED:
            for event_id in payload.decode().split("\n"):
                self._live.pop(event_id, None)
            return
        try:
            event_id = events_pb2.UsageRecorded.FromString(payload).event_id
        except Exception:  # noqa: BLE001 - a record that passed its CRC but does not parse
            _log.warning("unreadable usage journal record skipped", kind=kind)
            return
        entry = self._live.get(event_id)
        if kind == ENDED:
            if entry is None:
                self._live[event_id] = _Entry(state=payload, ended=payload)
            else:
                entry.ended = payload
        elif entry is None:
            self._live[event_id] = _Entry(state=payload)
        elif entry.ended is None:  # progress written after the end (a late tick) changes nothing
            entry.state = payload

    # --- while serving (event loop thread); state changes before the record is appended ----------

    def opened(self, event_id: str, state: bytes) -> None:
        self._live[event_id] = _Entry(state=state)
        self._log.append(OPENED, state)

    def progressed(self, event_id: str, state: bytes) -> None:
        entry = self._live.get(event_id)
        if entry is not None and entry.ended is None:
            entry.state = state
            self._log.append(PROGRESS, state)

    def ended(self, event_id: str, payload: bytes) -> None:
        entry = self._live.get(event_id)
        if entry is None:
            self._live[event_id] = _Entry(state=payload, ended=payload)
        else:
            entry.ended = payload
        self._log.append(ENDED, payload)

    def acked(self, event_ids: list[str]) -> None:
        """JetStream stored these: they need no re-send, and their records may be trimmed."""
        for event_id in event_ids:
            self._live.pop(event_id, None)
        self._log.append(ACKED, "\n".join(event_ids).encode())

    def turn(self, turn_id: str, payload: bytes) -> None:
        """A session request's turn as it stands (replaces the one before)."""
        self._turns[turn_id] = payload
        self._log.append(TURN, turn_id.encode() + b"\n" + payload)

    def turn_stored(self, turn_id: str) -> None:
        if self._turns.pop(turn_id, None) is not None:
            self._log.append(TURN_STORED, turn_id.encode())

    def __len__(self) -> int:
        return len(self._live)

    def _checkpoint(self):
        """What a new segment starts with (called on the log's writer thread)."""
        for entry in list(self._live.values()):
            ended = entry.ended
            yield (ENDED, ended) if ended is not None else (OPENED, entry.state)
        for turn_id, turn in list(self._turns.items()):
            yield TURN, turn_id.encode() + b"\n" + turn

    def sync(self, timeout: float | None = None) -> bool:
        return self._log.sync(timeout)

    def close(self) -> None:
        self._log.close()
