"""On real JetStream: the publisher pipelines events and hands acks over in batches, re-sends
what went unanswered, and the usage stream is created when absent and updated only by the
deployment command."""

from __future__ import annotations

import asyncio
import secrets

import nats
import pytest
from nats.js.api import StreamConfig

from switchboard_common import events
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


async def test_events_are_published_without_waiting_and_acked_in_batches(js_stream):
    nc, js, stream, subject = js_stream
    batches: list[list[str]] = []
    publisher = events.EventPublisher(on_acked=batches.append)
    publisher.attach(nc)
    publisher.start()
    try:
        ids = [f"ev-{i}" for i in range(500)]
        for msg_id in ids:
            publisher.submit(subject, msg_id, msg_id.encode())
        publisher.submit(subject, "ev-0", b"ev-0")  # the same event again: sent once
        assert await publisher.drain(10) == 0
    finally:
        await publisher.close()
    acked = [msg_id for batch in batches for msg_id in batch]
    assert sorted(acked) == sorted(ids)
    assert len(batches) < len(acked) / 5  # acks arrive (and reach the journal) in batches
    assert (await js.stream_info(stream)).state.messages == 500


async def test_unanswered_publishes_are_sent_again(js_stream):
    nc, js, stream, subject = js_stream
    acked: list[str] = []
    publisher = events.EventPublisher(on_acked=acked.extend, ack_timeout=0.5, retry_seconds=0.1)
    publisher.attach(nc)
    publisher.start()
    try:
        # No stream takes this subject yet: JetStream answers "no responders", again and again.
        lost = f"sbtest.{secrets.token_hex(4)}.nowhere"
        publisher.submit(lost, "ev-late", b"x")
        await asyncio.sleep(0.5)
        assert acked == [] and publisher.pending == 1
        await js.add_stream(StreamConfig(name=f"{stream}_LATE", subjects=[lost]))
        try:
            assert await publisher.drain(10) == 0
        finally:
            await js.delete_stream(f"{stream}_LATE")
    finally:
        await publisher.close()
    assert acked == ["ev-late"]


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
