"""How the consumer settles one fetch: one transaction for its single events and UsageBatch
messages alike, ack after commit, term what can't parse, nak on failure, and a batch's records
stored once each however often they come."""

from __future__ import annotations

from sqlalchemy.exc import DataError
from switchboard.events.v1 import events_pb2

from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.domain import UsageFilter
from switchboard_billing.price_config import PriceOverrides
from switchboard_billing.pricing import PriceBook
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_billing.writes import Writer


class FakeMsg:
    """Stands in for a JetStream message; records how it was settled, in order."""

    def __init__(self, log: list, payload: bytes, name: str,
                 subject: str = "usage.recorded") -> None:
        self.data, self.name, self.log, self.subject = payload, name, log, subject
        self.headers = None

    async def ack(self):
        self.log.append(("ack", self.name))

    async def nak(self, delay=None):
        self.log.append(("nak", self.name, delay))

    async def term(self):
        self.log.append(("term", self.name))

    @property
    def metadata(self):
        raise AttributeError("not a JetStream message")


class LoggingRepo:
    """The real repository, noting each commit; `fail` makes chosen inserts raise."""

    def __init__(self, inner: UsageRepository, log: list, fail=None) -> None:
        self.inner, self.log, self.fail = inner, log, fail

    def insert_in(self, conn, entries):
        if self.fail:
            self.fail(entries)
        stored = self.inner.insert_in(conn, entries)
        self.log.append(("commit", tuple(e.request_id for e in entries)))
        return stored

    async def spend(self, f):
        return await self.inner.spend(f)


def event(request_id: str, tokens: int = 10) -> bytes:
    return record(request_id, tokens).SerializeToString()


def record(request_id: str, tokens: int = 10) -> events_pb2.UsageRecorded:
    return events_pb2.UsageRecorded(request_id=request_id, event_id=f"ev-{request_id}", model="m",
                                    key_id="k", prompt_tokens=tokens, completion_tokens=tokens,
                                    outcome=events_pb2.OUTCOME_SUCCESS)


def batch(log: list, name: str, *records: events_pb2.UsageRecorded) -> FakeMsg:
    payload = events_pb2.UsageBatch(batch_id=name, records=records).SerializeToString()
    return FakeMsg(log, payload, name, subject="usage.recorded.batch")


def consumer_with(repo) -> UsageConsumer:
    return UsageConsumer(repo, Writer(repo.inner.engine), PriceBook(PriceOverrides(), None),
                         BillingSettings(nak_delay_seconds=0.25))


async def test_acks_follow_the_commit_and_garbage_is_terminated(repo):
    log: list = []
    messages = [FakeMsg(log, event("a"), "a"), FakeMsg(log, b"\xff\xff", "junk"),
                FakeMsg(log, event("b"), "b"), FakeMsg(log, event("a"), "a-again")]
    await consumer_with(LoggingRepo(repo, log)).handle(messages)
    assert log == [("term", "junk"), ("commit", ("a", "b", "a")),
                   ("ack", "a"), ("ack", "b"), ("ack", "a-again")]
    assert (await repo.spend(UsageFilter())).totals.requests == 2


async def test_a_database_failure_naks_the_whole_batch(repo):
    log: list = []

    def down(entries):
        raise ConnectionError("database is gone")

    messages = [FakeMsg(log, event(n), n) for n in ("a", "b")]
    await consumer_with(LoggingRepo(repo, log, fail=down)).handle(messages)
    assert log == [("nak", "a", 0.25), ("nak", "b", 0.25)]
    assert (await repo.spend(UsageFilter())).totals.requests == 0


async def test_one_unstorable_row_does_not_hold_back_the_others(repo):
    log: list = []

    def refuse_bad(entries):
        if any(e.request_id == "bad" for e in entries):
            raise DataError("INSERT ...", {}, ValueError("value out of range"))

    messages = [FakeMsg(log, event(n), n) for n in ("a", "bad", "b")]
    await consumer_with(LoggingRepo(repo, log, fail=refuse_bad)).handle(messages)
    assert log == [("commit", ("a",)), ("ack", "a"), ("term", "bad"),
                   ("commit", ("b",)), ("ack", "b")]
    assert (await repo.spend(UsageFilter())).totals.requests == 2


async def test_batches_and_single_events_share_one_transaction_and_count_once(repo):
    log: list = []
    messages = [FakeMsg(log, event("a"), "a"), batch(log, "b1", record("b"), record("c")),
                batch(log, "b2", record("c"), record("d"))]  # c again: a journal's re-send
    await consumer_with(LoggingRepo(repo, log)).handle(messages)
    assert log == [("commit", ("a", "b", "c", "c", "d")),
                   ("ack", "a"), ("ack", "b1"), ("ack", "b2")]
    totals = (await repo.spend(UsageFilter())).totals
    assert (totals.requests, totals.prompt_tokens) == (4, 40)
    await consumer_with(LoggingRepo(repo, log)).handle([batch(log, "b1", record("b"), record("c"))])
    assert (await repo.spend(UsageFilter())).totals.requests == 4  # a redelivered batch: no change


async def test_a_malformed_record_is_left_out_of_its_batch_and_garbage_is_terminated(repo):
    log: list = []
    no_request_id = events_pb2.UsageRecorded(event_id="ev-x", model="m", key_id="k")
    messages = [batch(log, "b1", record("a"), no_request_id, record("b")),
                FakeMsg(log, b"\xff\xff", "junk", subject="usage.recorded.batch")]
    await consumer_with(LoggingRepo(repo, log)).handle(messages)
    assert log == [("term", "junk"), ("commit", ("a", "b")), ("ack", "b1")]
    assert (await repo.spend(UsageFilter())).totals.requests == 2


async def test_a_batch_is_nakked_whole_on_a_database_failure_and_keeps_its_good_rows(repo):
    log: list = []

    def down(entries):
        raise ConnectionError("database is gone")

    await consumer_with(LoggingRepo(repo, log, fail=down)).handle(
        [batch(log, "b1", record("a"), record("b"))])
    assert log == [("nak", "b1", 0.25)]

    def refuse_bad(entries):
        if any(e.request_id == "bad" for e in entries):
            raise DataError("INSERT ...", {}, ValueError("value out of range"))

    log.clear()
    await consumer_with(LoggingRepo(repo, log, fail=refuse_bad)).handle(
        [batch(log, "b1", record("a"), record("bad"), record("b"))])
    # The unstorable record is dropped (logged); its batch is acked once the others are stored.
    assert log == [("commit", ("a",)), ("commit", ("b",)), ("ack", "b1")]
    assert (await repo.spend(UsageFilter())).totals.requests == 2
