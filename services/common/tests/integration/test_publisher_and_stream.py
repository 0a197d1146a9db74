"""On real JetStream: the publisher sends records in batch messages without waiting, hands their
ids over as the batches are acked, re-sends what went unanswered as it was, and the usage stream
is created when absent and updated only by the deployment command."""

from __future__ import annotations

import asyncio
import secrets

import nats
import pytest
from nats.js.api import StreamConfig

from switchboard_common import events
from switchboard_common.publisher import BatchPublisher
from switchboard_common.testing.infra import NATS_VARIABLE, nats_url, reachable, unreachable_reason
from switchboard_common.usage_stream import UsageStreamSettings, apply

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def js_stream():
    url = nats_url()
    if not reachable(url):
        pytest.skip(unreachable_reason("NATS", url, NATS_VARIABLE))
    tag = secrets.token_hex(6)
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream, subject = f"SBTEST_PUB_{tag}", f"sbtest.{tag}.usage.recorded"
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], duplicate_window=60))
    try:
        yield nc, js, stream, subject
    finally:
        await js.delete_stream(stream)
        await nc.close()


def _joined(batch_id: str, records) -> bytes:
    """A batch as test bytes: its id, then each record's id and payload."""
    return "|".join([batch_id] + [f"{r.id}={r.payload.decode()}" for r in records]).encode()


async def _records_in(js, stream) -> list[list[str]]:
    info = await js.stream_info(stream)
    out = []
    for seq in range(1, info.state.messages + 1):
        msg = await js.get_msg(stream, seq)
        batch_id, *records = msg.data.decode().split("|")
        assert msg.headers["Nats-Msg-Id"] == batch_id  # the batch's own id, for JetStream's dedup
        out.append([record.split("=")[0] for record in records])
    return out


async def test_records_leave_in_batches_without_waiting_and_are_acked_by_id(js_stream):
    nc, js, stream, subject = js_stream
    acked: list[list[str]] = []
    publisher = BatchPublisher(subject, _joined, on_acked=acked.append, max_records=100,
                               linger_seconds=0.05)
    publisher.attach(nc)
    publisher.start()
    try:
        ids = [f"ev-{i}" for i in range(450)]
        for record_id in ids:  # submit returns at once: nothing is awaited here
            publisher.submit(record_id, record_id.encode())
        assert publisher.pending == 450
        assert await publisher.drain(10) == 0
    finally:
        await publisher.close()
    assert sorted(record_id for batch in acked for record_id in batch) == sorted(ids)
    batches = await _records_in(js, stream)
    assert [len(batch) for batch in batches] == [100, 100, 100, 100, 50]  # at most max_records
    assert [record_id for batch in batches for record_id in batch] == ids  # in order


async def test_records_wait_out_the_linger_to_share_a_message(js_stream):
    nc, js, stream, subject = js_stream
    publisher = BatchPublisher(subject, _joined, on_acked=lambda _: None, linger_seconds=0.3)
    publisher.attach(nc)
    publisher.start()
    try:
        publisher.submit("first", b"1")
        await asyncio.sleep(0.1)
        publisher.submit("second", b"2")  # within the first one's linger: the same message
        await asyncio.sleep(0.1)
        assert (await js.stream_info(stream)).state.messages == 0  # still lingering
        await asyncio.sleep(0.4)
        assert await _records_in(js, stream) == [["first", "second"]]
        publisher.submit("third", b"3")
        assert await publisher.drain(5) == 0  # a drain does not linger
        assert await _records_in(js, stream) == [["first", "second"], ["third"]]
    finally:
        await publisher.close()


async def test_unanswered_batches_are_sent_again(js_stream):
    nc, js, stream, subject = js_stream
    acked: list[str] = []
    # No stream takes this subject yet: JetStream answers "no responders", again and again.
    lost = f"sbtest.{secrets.token_hex(4)}.nowhere"
    publisher = BatchPublisher(lost, _joined, on_acked=acked.extend, ack_timeout=0.5,
                               retry_seconds=0.1, linger_seconds=0.01)
    publisher.attach(nc)
    publisher.start()
    try:
        publisher.submit("ev-late", b"x")
        publisher.submit("ev-later", b"y")
        await asyncio.sleep(0.5)
        assert acked == [] and publisher.pending == 2
        await js.add_stream(StreamConfig(name=f"{stream}_LATE", subjects=[lost]))
        try:
            assert await publisher.drain(10) == 0
            # Sent again as it was: one message, the same batch id, both records.
            assert await _records_in(js, f"{stream}_LATE") == [["ev-late", "ev-later"]]
        finally:
            await js.delete_stream(f"{stream}_LATE")
    finally:
        await publisher.close()
    assert acked == ["ev-late", "ev-later"]


async def test_the_stream_is_created_when_absent_and_only_compared_otherwise(js_stream):
    nc, js, _, _ = js_stream
    name = f"SBTEST_USAGE_{secrets.token_hex(4)}"
    subjects = [f"sbtest.{name.lower()}.>"]
    try:
        assert await events.ensure_stream(js, events.usage_stream_config(name, subjects)) == []
        info = await js.stream_info(name)
        assert info.config.num_replicas == 1 and info.config.max_age == events.USAGE_MAX_AGE_SECONDS
        await js.update_stream(StreamConfig(name=name, subjects=subjects, max_age=60.0,
                                            duplicate_window=60.0))
        differences = await events.ensure_stream(js, events.usage_stream_config(name, subjects))
        assert any(d.startswith("max_age: 60.0") for d in differences)
        assert (await js.stream_info(name)).config.max_age == 60.0  # kept as deployment set it
    finally:
        await js.delete_stream(name)


async def test_the_deployment_command_creates_and_updates_the_stream(js_stream):
    nc, js, _, _ = js_stream
    name = f"SBTEST_USAGE_{secrets.token_hex(4)}"
    settings = UsageStreamSettings(name=name, subjects=[f"sbtest.{name.lower()}.>"],
                                   nats_url=nats_url(), max_age_seconds=3600, wait_seconds=5)
    try:
        assert await apply(settings) == "created"
        assert await apply(settings) == "unchanged"
        assert await apply(settings.model_copy(update={"max_age_seconds": 7200})) == "updated"
        assert (await js.stream_info(name)).config.max_age == 7200
    finally:
        await js.delete_stream(name)
