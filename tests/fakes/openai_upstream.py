"""A fake OpenAI API on loopback, in OpenAI's exact wire format: start, stop, and run as a script.

    python -m tests.fakes.openai_upstream --host 127.0.0.1 --port 0 [--port-file PATH]
    fake = await start_fake()          # async tests; fake.base_url ends in /v1
    handle = run_fake_in_thread()      # sync fixtures; handle.stop()

Chat answers echo the last user message ("Echo: <text>"); with tools and "call_tool" in that
message it calls the first tool. Failure hooks (error-<status>, slow-<ms>, hang,
abort-mid-stream) are described in `tests.fakes.openai_hooks`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import threading
from pathlib import Path
from collections.abc import Iterable, Mapping

from aiohttp import web

from tests.fakes.openai_app import OpenAIApp, RecordedRequest
from tests.fakes.openai_hooks import BEHAVIOR_HEADER, Behavior

__all__ = [
    "BEHAVIOR_HEADER", "Behavior", "FakeHandle", "FakeOpenAI", "RecordedRequest", "main",
    "run_fake_in_thread", "start_fake",
]


class FakeOpenAI:
    """A running fake. `requests` records every request received, in order."""

    def __init__(self, app: OpenAIApp, runner: web.AppRunner, host: str, port: int):
        self._app, self._runner = app, runner
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.base_url = f"{self.url}/v1"
        self.requests: list[RecordedRequest] = app.requests

    async def close(self) -> None:
        self._app.closing.set()  # answers the hung requests, so shutdown need not wait on them
        await self._runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_fake(host: str = "127.0.0.1", port: int = 0, *,
                     api_keys: Iterable[str] | None = None, record: bool = True,
                     throttled_keys: Mapping[str, str] | None = None,
                     tokens_file: Path | None = None) -> FakeOpenAI:
    """Start the fake on `host:port` (0: a free port). `api_keys=None` accepts any `sk-` key;
    `throttled_keys` (key -> Retry-After) are answered 429 however often they are used;
    `tokens_file`: OAuth access tokens accepted too, while oauth_fake lists them as in force."""
    app = OpenAIApp(api_keys, record, throttled_keys, tokens_file)
    runner = web.AppRunner(app.application(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return FakeOpenAI(app, runner, host, runner.addresses[0][1])


class FakeHandle:
    """A fake running on its own thread and event loop, for sync tests; `stop()` ends both."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, fake: FakeOpenAI):
        self._loop, self._thread, self._fake = loop, thread, fake
        self.host, self.port, self.url = fake.host, fake.port, fake.url
        self.base_url = fake.base_url
        self.requests = fake.requests

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._fake.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_fake_in_thread(host: str = "127.0.0.1", port: int = 0, *,
                       api_keys: Iterable[str] | None = None,
                       throttled_keys: Mapping[str, str] | None = None,
                       tokens_file: Path | None = None) -> FakeHandle:
    """Start the fake on a daemon thread; returns once it listens."""
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
    thread.start()
    started = asyncio.run_coroutine_threadsafe(start_fake(host, port, api_keys=api_keys,
                                                            throttled_keys=throttled_keys,
                                                            tokens_file=tokens_file), loop)
    try:
        fake = started.result(timeout=10)
    except (Exception, concurrent.futures.TimeoutError):
        loop.call_soon_threadsafe(loop.stop)
        raise
    return FakeHandle(loop, thread, fake)


async def _serve(args: argparse.Namespace) -> None:
    # A script has nobody to read recorded requests, and a benchmark would grow them without end.
    fake = await start_fake(args.host, args.port, api_keys=args.api_key, record=False,
                            tokens_file=Path(args.tokens_file) if args.tokens_file else None)
    if args.port_file:
        # Written whole then renamed, so a poller never reads half a number.
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(str(fake.port))  # noqa: ASYNC240 - once, before serving
        os.replace(tmp, args.port_file)
    print(f"listening on {fake.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openai_upstream",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port to this file once listening")
    parser.add_argument("--api-key", action="append",
                        help="accept only these keys (repeatable); default: any key starting sk-")
    parser.add_argument("--tokens-file",
                        help="also accept the OAuth access tokens in force that oauth_fake lists here")
    args = parser.parse_args(argv)
    try:
        import uvloop  # the fake is also the benchmark's instant upstream: keep its loop cheap
    except ImportError:
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
