"""The usage journal's replay: cut requests become interrupted events, unacked ones are sent
again, acked ones are gone, and nothing but ids and counts is on disk."""

from __future__ import annotations

from switchboard.events.v1 import events_pb2
from switchboard_common.journal import SegmentLog

from switchboard_router.journal import UsageJournal


def _journal(path) -> UsageJournal:
    return UsageJournal(SegmentLog(path, prefix="usage", flush_seconds=0.001))


def _state(event_id: str, **fields) -> bytes:
    return events_pb2.UsageRecorded(event_id=event_id, request_id=f"r-{event_id}",
                                    outcome=events_pb2.OUTCOME_INTERRUPTED,
                                    **fields).SerializeToString()


def _ended(event_id: str) -> bytes:
    return events_pb2.UsageRecorded(event_id=event_id, request_id=f"r-{event_id}",
                                    outcome=events_pb2.OUTCOME_SUCCESS,
                                    total_tokens=9).SerializeToString()


def test_replay_publishes_what_a_crash_left_and_forgets_what_was_acked(tmp_path):
    journal = _journal(tmp_path)
    assert journal.recover() == []
    journal.opened("cut", _state("cut", key_id="k"))
    journal.progressed("cut", _state("cut", key_id="k", prompt_tokens=4, completion_tokens=20))
    journal.opened("done", _state("done"))
    journal.ended("done", _ended("done"))
    journal.opened("acked", _state("acked"))
    journal.ended("acked", _ended("acked"))
    journal.acked(["acked"])
    journal.sync(5)
    journal.close()  # writes nothing of its own: the same bytes as a kill -9 after the sync

    replayed = dict(_journal(tmp_path).recover())
    assert set(replayed) == {"cut", "done"}
    cut = events_pb2.UsageRecorded.FromString(replayed["cut"])
    assert cut.outcome == events_pb2.OUTCOME_INTERRUPTED and cut.key_id == "k"
    assert (cut.prompt_tokens, cut.completion_tokens) == (4, 20)  # the last progress
    assert replayed["done"] == _ended("done")  # re-sent as it was, same event id


def test_a_progress_record_after_the_end_changes_nothing(tmp_path):
    journal = _journal(tmp_path)
    journal.recover()
    journal.opened("a", _state("a"))
    journal.ended("a", _ended("a"))
    journal.progressed("a", _state("a", completion_tokens=99))  # a late tick
    journal.close()
    assert dict(_journal(tmp_path).recover())["a"] == _ended("a")


def test_replayed_events_stay_until_acked_across_restarts(tmp_path):
    journal = _journal(tmp_path)
    journal.recover()
    journal.opened("cut", _state("cut"))
    journal.close()
    first = _journal(tmp_path)
    assert [eid for eid, _ in first.recover()] == ["cut"]
    first.close()  # stopped again before NATS acked it
    second = _journal(tmp_path)
    assert [eid for eid, _ in second.recover()] == ["cut"]
    second.acked(["cut"])
    second.close()
    assert _journal(tmp_path).recover() == []
    # Everything older was trimmed: one segment, holding no live record.
    assert len(SegmentLog(tmp_path, prefix="usage").segments()) == 1


def test_a_torn_record_at_the_end_is_ignored(tmp_path):
    journal = _journal(tmp_path)
    journal.recover()
    journal.opened("whole", _state("whole"))
    journal.opened("torn", _state("torn"))
    journal.close()
    (segment,) = SegmentLog(tmp_path, prefix="usage").segments()
    segment.write_bytes(segment.read_bytes()[:-5])
    assert [eid for eid, _ in _journal(tmp_path).recover()] == ["whole"]
