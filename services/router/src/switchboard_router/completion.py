"""What a stream has produced so far, as a token count, in bounded memory whatever the stream's size.

Needed only when the provider reports no usage (a stream cut short, a vendor without
`include_usage`), which is not known until the end, so every stream keeps it, cheaply:
- reads are kept as they came, unparsed (the common stream is short and reports usage, so it is
  never parsed here);
- past RAW_LIMIT bytes they are parsed into text (by the wire format's `texts` function);
- past TEXT_LIMIT characters the text is counted on a worker thread (tiktoken releases the GIL)
  and dropped. While one count runs, `busy` asks the stream to wait before reading more, so a
  provider faster than the tokenizer cannot grow the text without end.
A stream thus holds about RAW_LIMIT bytes and 2 x TEXT_LIMIT characters at most.

The stream feeds it on the event loop; `tokens()` may be called from any thread (the usage
recorder counts on worker threads), so the state is kept under a lock, never held while counting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import structlog

_log = structlog.get_logger("completion")
RAW_LIMIT = 256 * 1024  # about 1,300 OpenAI chunks: most answers end (with their usage) before it
TEXT_LIMIT = 32 * 1024  # about 1 ms of tiktoken


class CompletionCounter:
    def __init__(self, texts: Callable[[bytes], list[str]], count: Callable[[str], int], *,
                 raw_limit: int = RAW_LIMIT, text_limit: int = TEXT_LIMIT) -> None:
        self._texts = texts
        self._count = count
        self._raw_limit = raw_limit
        self._text_limit = text_limit
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._raw_size = 0
        self._text: list[str] = []
        self._text_size = 0
        self._tokens = 0
        self._counting: asyncio.Task[None] | None = None  # on the event loop, counting on a thread
        self._counting_size = 0
        self._stopped = False

    def add(self, data: bytes) -> None:
        """Complete events of the stream, as forwarded (on the event loop). The hot path: an
        append, mostly."""
        with self._lock:
            if self._stopped:
                return
            self._raw.append(data)
            self._raw_size += len(data)
            if self._raw_size <= self._raw_limit:
                return
            self._digest()
            start = self._text_size > self._text_limit and self._counting is None
        if start:
            self._count_later()

    def stop(self) -> None:
        """The provider reported usage: nothing more needs keeping."""
        with self._lock:
            self._stopped = True
            self._raw, self._text = [], []
            self._raw_size = self._text_size = 0

    @property
    def busy(self) -> bool:
        """Whether the stream should `await settle()` before its next read (see the module doc)."""
        return self._counting is not None and self._text_size > self._text_limit

    async def settle(self) -> None:
        """Wait until no count runs on the worker thread (one that ends may start the next)."""
        while self._counting is not None:
            await asyncio.shield(self._counting)  # a cancelled stream still waits for its count

    def tokens(self) -> int:
        """The tokens produced so far, from any thread. Exact once `settle()` has returned; while
        a count still runs on the worker thread, its text is estimated at 4 characters a token."""
        with self._lock:
            self._digest()
            text, self._text, self._text_size = "".join(self._text), [], 0
        counted = self._count(text) if text else 0
        with self._lock:
            self._tokens += counted
            running = (self._counting_size + 3) // 4 if self._counting is not None else 0
            return self._tokens + running

    def _digest(self) -> None:
        """Raw events into text; under the lock."""
        if self._raw:
            self._text += self._texts(b"".join(self._raw))
            self._text_size = sum(map(len, self._text))
            self._raw, self._raw_size = [], 0

    def _count_later(self) -> None:
        with self._lock:
            text, self._text, self._text_size = "".join(self._text), [], 0
            self._counting_size = len(text)
        self._counting = asyncio.get_running_loop().create_task(self._count_off_loop(text))

    async def _count_off_loop(self, text: str) -> None:
        counted = 0
        try:
            counted = await asyncio.to_thread(self._count, text)
        except Exception:  # noqa: BLE001 - the estimate is lost, the stream must go on
            _log.exception("completion tokens not counted", characters=len(text))
        finally:
            with self._lock:
                self._tokens += counted
                # Within the task, so that whoever awaits it finds the bookkeeping done.
                self._counting, self._counting_size = None, 0
                again = self._text_size > self._text_limit and not self._stopped
        if again:
            self._count_later()
