"""An append-only log in segment files: written from the appender's event loop once per loop
turn (group commit), synced to disk by one background thread.

`append` costs its caller a deque append; the first append of a loop turn schedules one write
(`call_soon`) that frames everything appended in the turn (length, CRC32, kind) and hands it to
the kernel with one `write`. A written record survives a process killed with -9 (the page cache
belongs to the kernel), so a kill loses at most the records of the loop turn it cuts (the owner's
earlier records still tell what it knew: the router's request is admitted turns before its
provider answers, and replays as interrupted). The sync thread fdatasyncs what was written at most once every
`flush_seconds`, so a power loss loses at most that long's records; it never touches the records
themselves, so the loop and the thread do not hand records to each other. Without a running loop
(tools, tests), `append` writes at once.

A torn last record (a kill or a crash mid-write) fails its length or CRC check and ends the replay
of its segment; later segments still count.

Trimming: when the active segment outgrows its limit, the writer opens a new segment that starts
with a checkpoint (the records the owner says are still live); the older segments are deleted by
the sync thread once the new one is synced. The owner changes its state *before* it appends the
record saying so, and replaying a record twice must be harmless, so a checkpoint taken while
records wait to be written is right whichever side of it they land.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import structlog

_log = structlog.get_logger("journal")
HEADER = struct.Struct("<IIB")  # payload length, CRC32 of kind byte + payload, kind
MAX_RECORD = 64 << 20  # a length past this is a torn header, not a record
Checkpoint = Callable[[], Iterable[tuple[int, bytes]]]


class SegmentLog:
    def __init__(self, directory: Path, *, prefix: str = "journal", flush_seconds: float = 0.02,
                 segment_bytes: int = 8 << 20, fsync: bool = True) -> None:
        self.directory = directory
        self._prefix = prefix
        self._flush_seconds = flush_seconds  # the longest a written record waits for fdatasync
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._queue: deque[tuple[int, bytes]] = deque()
        self._scheduled = False  # a write is scheduled on the appender's loop
        self._appended = 0  # counted by the appending thread
        # Under _write_lock (the writer: the loop's turn, or sync/close from another thread):
        self._write_lock = threading.Lock()
        self._written = 0  # appended records now in the active segment (or its checkpoint)
        self._unwritten = 0  # records whose write failed: the next write rotates to cover them
        self._retired: list[tuple[BinaryIO | None, list[Path]]] = []  # to delete once synced
        self._file: BinaryIO | None = None
        self._seq = 0
        self._size = 0
        self._rotate_at = segment_bytes
        self._checkpoint: Checkpoint = lambda: ()
        self._failure_logged = 0.0
        # The sync thread:
        self._dirty = threading.Event()  # written since the last sync
        self._hurry = threading.Event()  # someone waits for the sync
        self._done = threading.Condition()
        self._synced = 0  # records appended so far that are on disk
        self._synced_written = -1  # _written at the last sync
        self._closing = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    # --- reading, before open --------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self._prefix}-*.log"))

    def replay(self) -> Iterator[tuple[int, bytes]]:
        """Every intact record of every segment, oldest first."""
        for path in self.segments():
            yield from _read_segment(path)

    # --- writing ---------------------------------------------------------------------------------

    def open(self, checkpoint: Checkpoint) -> None:
        """Start a new segment holding `checkpoint()` (called again at each rotation), sync it and
        delete the older segments, then start the sync thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = (self.directory / f"{self._prefix}.lock").open("a")
        try:  # two writers would each trim the other's records
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(f"the journal in {self.directory} is in use by another process; "
                               "give each replica its own directory") from None
        existing = self.segments()
        self._seq = int(existing[-1].stem.rsplit("-", 1)[1]) if existing else 0
        self._checkpoint = checkpoint
        with self._write_lock:
            self._rotate()
        if not self._sync_written():
            raise RuntimeError(f"the journal in {self.directory} cannot be synced")
        self._thread = threading.Thread(target=self._run, name=f"{self._prefix}-sync", daemon=True)
        self._thread.start()

    def append(self, kind: int, payload: bytes) -> None:
        """Queue one record; it is written at the end of this loop turn and synced within
        `flush_seconds`. Not thread-safe: one appending thread."""
        self._queue.append((kind, payload))
        self._appended += 1
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to batch on
            self.write()
            return
        self._scheduled = True
        loop.call_soon(self._write_turn)

    def write(self) -> None:
        """Write every queued record now (the loop turn's write does this; so do sync and close,
        from any thread)."""
        with self._write_lock:
            self._write_queued()

    def sync(self, timeout: float | None = None) -> bool:
        """Block until every record appended so far is written and synced (False on timeout)."""
        target = self._appended
        self.write()
        self._dirty.set()
        self._hurry.set()
        with self._done:
            return self._done.wait_for(lambda: self._synced >= target or self._stopped, timeout) \
                and self._synced >= target

    def close(self) -> None:
        """Write what is queued, sync, stop the sync thread."""
        if self._thread is None:
            return
        self.write()
        self._closing = True
        self._dirty.set()
        self._hurry.set()
        self._thread.join()
        self._thread = None
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        self._lock.close()

    @property
    def size(self) -> int:
        """Bytes in the active segment."""
        return self._size

    def _write_turn(self) -> None:
        self._scheduled = False
        self.write()

    def _write_queued(self) -> None:
        """Under the write lock."""
        queue = self._queue
        count = len(queue)
        if not count and not self._unwritten:
            return
        if self._file is None:
            return  # closed: appends after close are not kept
        popleft = queue.popleft
        data = b"".join(_frame(*popleft()) for _ in range(count))
        try:
            if self._unwritten:
                # A write failed (disk full, I/O error) and may have left a torn record: start a
                # new segment. Its checkpoint holds what the lost records said (the owner changed
                # its state before appending them), so they need no rewriting.
                self._rotate()
                self._written += self._unwritten
                self._unwritten = 0
            _write_all(self._file, data)
            self._size += len(data)
            self._written += count
            if self._size > self._rotate_at:
                self._rotate()
        except OSError as exc:
            self._unwritten += count
            self._failed("journal write failed; retrying", exc)
            return
        if not self._dirty.is_set():
            self._dirty.set()

    def _rotate(self) -> None:
        """A new active segment starting with the checkpoint; the old ones are retired, to be
        deleted once the new one is synced. Under the write lock."""
        old = self.segments()
        self._seq += 1
        path = self.directory / f"{self._prefix}-{self._seq:010d}.log"
        file = path.open("ab", buffering=0)
        try:
            data = b"".join(_frame(kind, payload) for kind, payload in self._checkpoint())
            _write_all(file, data)
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
        self._retired.append((self._file, old))
        self._file, self._size = file, len(data)
        # A checkpoint that is most of the segment would make every write rotate: let it double.
        self._rotate_at = max(self._segment_bytes, 2 * len(data))

    # --- syncing (the sync thread) ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._dirty.wait()
                self._dirty.clear()  # before reading _closing: close() sets it, then _dirty
                closing = self._closing
                if not self._sync_written():
                    self._dirty.set()  # retry after the pause
                if closing:
                    break
                # Records written meanwhile share the next sync; sync() and close() cut the pause.
                self._hurry.wait(self._flush_seconds)
                self._hurry.clear()
        except Exception:  # a journal that cannot sync must say so loudly
            _log.exception("journal sync failed", directory=str(self.directory))
            raise
        finally:
            with self._done:
                self._stopped = True
                self._done.notify_all()

    def _sync_written(self) -> bool:
        with self._write_lock:
            file, target = self._file, self._written
            retired, self._retired = self._retired, []
        if target == self._synced_written and not retired:
            return True  # nothing written since the last sync
        try:
            if self._fsync and file is not None:
                os.fdatasync(file.fileno())  # not closed meanwhile: only this thread closes
        except OSError as exc:
            # The kernel may have dropped the dirty pages: rewrite the live state elsewhere.
            self._failed("journal sync failed; rewriting the live records in a new segment", exc)
            with self._write_lock:
                self._retired[:0] = retired
                try:
                    self._rotate()
                except OSError:
                    pass
            return False
        if retired:
            if self._fsync:
                _sync_directory(self.directory)  # the new segment's name is durable first
            for old_file, paths in retired:
                if old_file is not None:
                    old_file.close()
                for stale in paths:
                    stale.unlink(missing_ok=True)
            if self._fsync:
                _sync_directory(self.directory)
        self._synced_written = target
        with self._done:
            self._synced = max(self._synced, target)
            self._done.notify_all()
        return True

    def _failed(self, message: str, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._failure_logged > 30:
            self._failure_logged = now
            _log.error(message, directory=str(self.directory), error=str(exc),
                       unwritten_records=self._unwritten)


_KIND_CRC = [zlib.crc32(bytes((kind,))) for kind in range(256)]


def _frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload, _KIND_CRC[kind]), kind) + payload


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:  # an unbuffered write may take less than it was given
        view = view[file.write(view):]


def _read_segment(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < HEADER.size:
            break
        length, crc, kind = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        if length > MAX_RECORD or start + length > end:
            break
        payload = data[start:start + length]
        if zlib.crc32(payload, _KIND_CRC[kind]) != crc:
            break
        yield kind, payload
        offset = start + length
    if offset < end:
        _log.warning("journal segment ends in a torn record; the rest is ignored",
                     segment=path.name, offset=offset, ignored_bytes=end - offset)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
