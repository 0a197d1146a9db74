"""The completion of a stream as a token count: bounded memory, counted off the event loop once
long, exact at the end, and no parsing at all for a stream that stays short."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest

from switchboard_router.completion import CompletionCounter
from switchboard_router.codecs import openai as codec


def _event(text: str) -> bytes:
    chunk = {"object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


class Recorder:
    """Counts words, and notes which thread counted what."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self, text: str) -> int:
        self.threads.append(threading.current_thread().name)
        return len(text.split())


async def test_a_short_stream_is_kept_as_it_came_and_never_parsed():
    parsed: list[bytes] = []

    def texts(raw: bytes) -> list[str]:
        parsed.append(raw)
        return codec.stream_texts(raw)

    counter = CompletionCounter(texts, Recorder())
    for i in range(100):
        counter.add(_event(f" w{i}"))
    assert parsed == []  # the common path: appends only
    assert counter.tokens() == 100
    assert len(parsed) == 1  # parsed once, when asked


async def test_a_long_stream_stays_bounded_and_is_counted_on_a_worker_thread():
    count = Recorder()
    counter = CompletionCounter(codec.stream_texts, count, raw_limit=4096, text_limit=2048)
    words = 0
    for _ in range(20_000):
        counter.add(_event(" word" * 5))
        words += 5
        assert counter._raw_size <= 4096 + 200 and counter._text_size <= 2 * 2048 + 30
        if counter.busy:
            await counter.settle()
    await counter.settle()
    assert counter.tokens() == words
    on_loop = threading.current_thread().name
    assert any(name != on_loop for name in count.threads)  # the big counts left the event loop


async def test_tokens_can_be_read_at_any_time_while_the_stream_runs():
    counter = CompletionCounter(codec.stream_texts, Recorder(), raw_limit=1024, text_limit=512)
    seen = []
    for i in range(2_000):
        counter.add(_event(" a b"))
        if i % 100 == 99:
            seen.append(counter.tokens())  # what a journal reads every second
    await counter.settle()
    assert counter.tokens() == 4_000
    assert seen == sorted(seen) and seen[0] > 0


async def test_usage_from_the_provider_drops_everything_kept():
    counter = CompletionCounter(codec.stream_texts, Recorder(), raw_limit=1024)
    for _ in range(10):
        counter.add(_event(" a"))
    counter.stop()
    counter.add(_event(" b"))
    assert counter._raw == [] and counter.tokens() == 0


@pytest.mark.parametrize("limit", [1, 64])
async def test_tiny_limits_still_count_exactly(limit):
    counter = CompletionCounter(codec.stream_texts, Recorder(), raw_limit=limit, text_limit=limit)
    for _ in range(50):
        counter.add(_event(" x y"))
        await asyncio.sleep(0)
        if counter.busy:
            await counter.settle()
    await counter.settle()
    assert counter.tokens() == 100


async def test_settle_waits_for_every_count_in_flight():
    def slow(text: str) -> int:
        time.sleep(0.005)  # slower than the stream: a count is always running
        return len(text.split())

    counter = CompletionCounter(codec.stream_texts, slow, raw_limit=1, text_limit=1)
    for _ in range(30):
        counter.add(_event(" x y"))
        assert counter._text_size <= 2 * 10  # one event's text past the limit, at most
        if counter.busy:
            await counter.settle()
    await counter.settle()
    assert counter._counting is None and counter.tokens() == 60


async def test_tokens_can_be_read_from_a_worker_thread_while_the_stream_is_fed():
    # The usage recorder journals progress from worker threads while the loop feeds the stream.
    counter = CompletionCounter(codec.stream_texts, Recorder(), raw_limit=512, text_limit=256)
    stop = threading.Event()
    seen: list[int] = []

    def journal() -> None:
        while not stop.is_set():
            seen.append(counter.tokens())

    reader = threading.Thread(target=journal)
    reader.start()
    try:
        for i in range(3_000):
            counter.add(_event(" a b"))
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the counting tasks run
            if counter.busy:
                await counter.settle()
    finally:
        stop.set()
        reader.join()
    await counter.settle()
    assert counter.tokens() == 6_000  # nothing lost or counted twice
    assert seen and max(seen) <= 6_000 + 64  # (a running count is estimated)
