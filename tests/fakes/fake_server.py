"""What every provider fake's server shares: an aiohttp app on loopback, the requests it got, ids
unique per fake run, and the command line the fake starters (tests/fakes/process.py) use."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import orjson
from aiohttp import web


class FakeServer:
    ID_DIGITS = 16  # the serial's width in the ids the fake makes, as its provider's look

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.base_url = ""
        self._run = secrets.token_hex(4)
        self._serial = itertools.count(1)

    def application(self) -> web.Application:
        raise NotImplementedError

    def _id(self, prefix: str) -> str:
        return f"{prefix}{self._run}{next(self._serial):0{self.ID_DIGITS}d}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        self.runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{bound}"
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def json_or_none(raw: bytes) -> Any:
    """The body as JSON, or None when it is not (the fake then answers the provider's 400)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def serve_main(description: str, make: Callable[[argparse.Namespace], FakeServer],
               add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """`python -m tests.fakes.<fake> --host H --port P --port-file F`: serve until killed, the
    port it bound written to F."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()

    async def serve() -> None:
        fake = await make(args).start(args.host, args.port)
        if args.port_file:
            args.port_file.write_text(fake.base_url.rsplit(":", 1)[1])
        await asyncio.Event().wait()

    asyncio.run(serve())
