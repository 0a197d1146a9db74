"""The segment log: one write per loop turn, syncs on its own thread, replay, trimming, torn tails."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from switchboard_common.journal import SegmentLog


def _open(path, checkpoint=lambda: (), **kw) -> SegmentLog:
    log = SegmentLog(path, prefix="t", **kw)
    log.open(checkpoint)
    return log


def test_appends_are_synced_by_the_sync_thread_and_replayed_in_order(tmp_path, monkeypatch):
    writers: set[str] = set()
    real_write = os.fdatasync

    def spy(fd):
        writers.add(threading.current_thread().name)
        return real_write(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    log = _open(tmp_path, flush_seconds=0.001)
    writers.clear()  # open() synced its first segment itself, before serving
    for i in range(1000):
        log.append(1 + i % 3, f"record {i}".encode())
    assert log.sync(5)
    log.close()
    assert writers == {"t-sync"}  # never the appending thread
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [
        (1 + i % 3, f"record {i}".encode()) for i in range(1000)]


def test_a_loop_turn_appends_with_one_write_on_disk_before_the_next_turn(tmp_path, monkeypatch):
    import switchboard_common.journal as journal

    writes: list[int] = []
    real = journal._write_all
    monkeypatch.setattr(journal, "_write_all", lambda f, data: (writes.append(len(data)),
                                                                real(f, data)))
    log = _open(tmp_path, flush_seconds=60)  # no fdatasync in this test's time: written is enough
    writes.clear()  # the first segment's (empty) checkpoint

    async def serve() -> list:
        for i in range(100):
            log.append(1, b"turn one %d" % i)
        assert writes == []  # nothing written while the turn goes on
        await asyncio.sleep(0)
        on_disk = list(SegmentLog(tmp_path, prefix="t").replay())  # as a kill -9 now leaves it
        log.append(2, b"turn two")
        await asyncio.sleep(0)
        return on_disk

    on_disk = asyncio.run(serve())
    assert on_disk == [(1, b"turn one %d" % i) for i in range(100)]
    assert len(writes) == 2  # one per turn
    log.close()
    assert list(SegmentLog(tmp_path, prefix="t").replay())[-1] == (2, b"turn two")


def test_group_commit_writes_many_records_per_sync(tmp_path, monkeypatch):
    syncs = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: syncs.append(fd))
    log = _open(tmp_path, flush_seconds=0.05)
    for _ in range(500):
        log.append(1, b"x" * 50)
    assert log.sync(5)
    log.close()
    assert 1 <= len(syncs) <= 3  # one write + sync per interval, not per record


def test_a_torn_last_record_is_ignored_and_the_next_start_goes_on(tmp_path):
    log = _open(tmp_path)
    log.append(1, b"first")
    log.append(2, b"second")
    log.sync(5)
    log.close()
    (segment,) = SegmentLog(tmp_path, prefix="t").segments()
    whole = segment.read_bytes()
    segment.write_bytes(whole[:-3])  # killed mid-write: the last record lost its tail
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [(1, b"first")]
    segment.write_bytes(whole[:-6] + b"XXXXXX")  # or its bytes are garbage: the CRC says so
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [(1, b"first")]
    # The next start writes a fresh segment after the torn one; both replay.
    log = _open(tmp_path, checkpoint=lambda: [(1, b"first")])
    log.append(3, b"third")
    log.sync(5)
    log.close()
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [(1, b"first"), (3, b"third")]


def test_open_starts_from_the_checkpoint_and_deletes_older_segments(tmp_path):
    log = _open(tmp_path)
    for i in range(10):
        log.append(1, b"%d" % i)
    log.sync(5)
    log.close()
    old = SegmentLog(tmp_path, prefix="t").segments()
    log = _open(tmp_path, checkpoint=lambda: [(1, b"live")])
    log.close()
    segments = SegmentLog(tmp_path, prefix="t").segments()
    assert len(segments) == 1 and segments[0] not in old
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [(1, b"live")]


def test_a_full_segment_rotates_to_a_checkpoint_and_trims_the_rest(tmp_path):
    live = {b"still-open"}
    log = _open(tmp_path, checkpoint=lambda: [(1, r) for r in sorted(live)],
                segment_bytes=4096, flush_seconds=0.001)
    for i in range(2000):  # ~60 KB: many rotations
        log.append(2, b"acked-%06d" % i)
        if i % 200 == 0:
            log.sync(5)
    log.sync(5)
    segments = log.segments()
    assert len(segments) == 1  # every older segment was trimmed
    assert log.size < 8192
    log.close()
    replayed = list(SegmentLog(tmp_path, prefix="t").replay())
    assert replayed[0] == (1, b"still-open")  # the checkpoint opens the segment
    assert len(replayed) < 400  # what came before the last rotation is gone


def test_one_journal_directory_has_one_writer(tmp_path):
    log = _open(tmp_path)
    with pytest.raises(RuntimeError, match="in use by another process"):
        _open(tmp_path)
    log.close()
    _open(tmp_path).close()  # free again once closed


def test_a_failed_write_is_retried_in_a_new_segment_from_the_checkpoint(tmp_path, monkeypatch):
    live = [(1, b"live-after-the-failure")]
    log = _open(tmp_path, checkpoint=lambda: live, flush_seconds=0.001)
    real = os.fdatasync
    failures = [OSError(28, "No space left on device")]

    def flaky(fd):
        if failures:
            raise failures.pop()
        return real(fd)

    monkeypatch.setattr(os, "fdatasync", flaky)
    log.append(2, b"lost in the failed write")
    assert log.sync(5)  # durable after all: the next segment's checkpoint covers it
    log.append(3, b"after")
    assert log.sync(5)
    log.close()
    assert list(SegmentLog(tmp_path, prefix="t").replay()) == [
        (1, b"live-after-the-failure"), (3, b"after")]
