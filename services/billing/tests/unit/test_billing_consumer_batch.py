"""How the consumer settles one fetched batch: ack after commit, term what can't parse, nak on failure."""

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

    def __init__(self, log: list, payload: bytes, name: str) -> None:
        self.data, self.name, self.log = payload, name, log

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

    async def insert_in(self, conn, entries):
        if self.fail:
            self.fail(entries)
        stored = await self.inner.insert_in(conn, entries)
        self.log.append(("commit", tuple(e.request_id for e in entries)))
        return stored

    async def spend(self, f):
        return await self.inner.spend(f)


def event(request_id: str, tokens: int = 10) -> bytes:
    return events_pb2.UsageRecorded(request_id=request_id, model="m", key_id="k",
                                    prompt_tokens=tokens, completion_tokens=tokens,
                                    outcome=events_pb2.OUTCOME_SUCCESS).SerializeToString()


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
