"""The server interceptor's stream handlers: the handler's generator is closed explicitly when the
call ends early, not left to the garbage collector's finaliser."""

from __future__ import annotations

import asyncio
import inspect

import grpc
import pytest
from structlog.testing import capture_logs

from switchboard_common.errors import UpstreamError
from switchboard_common.interceptors import _wrap_stream


class Context:
    """Enough of grpc.aio's ServicerContext: each write blocks until `release` is set."""

    def __init__(self) -> None:
        self.written: list[object] = []
        self.writing = asyncio.Event()
        self.release = asyncio.Event()
        self.aborted: tuple | None = None
        self._cancelled = False

    def invocation_metadata(self):
        return (("x-request-id", "r-1"),)

    async def write(self, message) -> None:
        self.written.append(message)
        self.writing.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self._cancelled = True
            raise

    async def abort(self, code, details, trailing_metadata=()):
        self.aborted = (code, details, dict(trailing_metadata))
        raise grpc.aio.AbortError()

    def code(self):
        return self.aborted[0] if self.aborted else None

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._cancelled or self.aborted is not None


async def _serve(handler, context: Context) -> None:
    """Run a stream handler the way grpc.aio does, for either of its two styles."""
    if inspect.iscoroutinefunction(handler):
        await handler(None, context)
    else:
        async for message in handler(None, context):
            await context.write(message)


def _recording_handler(closed: asyncio.Event, held: list, fail_after: int | None = None):
    async def messages(request, context):
        try:
            n = 0
            while True:
                n += 1
                if fail_after is not None and n > fail_after:
                    raise UpstreamError("the provider failed")
                yield f"m{n}"
        finally:
            closed.set()

    def inner(request, context):
        held.append(gen := messages(request, context))  # as if something else still held it
        return gen
    return inner


async def test_a_client_gone_mid_write_closes_the_handler_at_once():
    closed, held, context = asyncio.Event(), [], Context()
    stream = _wrap_stream(_recording_handler(closed, held), "/t.Service/Stream", False)
    call = asyncio.ensure_future(_serve(stream, context))
    await asyncio.wait_for(context.writing.wait(), 1)
    call.cancel()  # what grpc.aio does when the peer resets the stream
    with pytest.raises(asyncio.CancelledError):
        await call
    # Closed before the call's task ended, though the generator is still referenced: explicit,
    # not left to the generator's finaliser.
    assert closed.is_set()


async def test_a_failing_handler_is_closed_and_its_error_becomes_the_status():
    closed, held, context = asyncio.Event(), [], Context()
    context.release.set()
    stream = _wrap_stream(_recording_handler(closed, held, fail_after=2), "/t.Service/Stream",
                          False)
    with pytest.raises(grpc.aio.AbortError):
        await _serve(stream, context)
    assert context.written == ["m1", "m2"] and closed.is_set()
    code, details, metadata = context.aborted
    assert code == grpc.StatusCode.UNAVAILABLE and metadata["x-http-status"] == "502"


@pytest.mark.parametrize("own_line", [False, True])
async def test_one_line_per_call_the_interceptors_unless_the_method_writes_its_own(own_line):
    closed, held, context = asyncio.Event(), [], Context()
    context.release.set()
    stream = _wrap_stream(_recording_handler(closed, held, fail_after=1), "/t.Service/Stream",
                          own_line)
    with capture_logs() as lines, pytest.raises(grpc.aio.AbortError):
        await _serve(stream, context)
    rpc = [line for line in lines if line["event"] == "rpc"]
    assert rpc == ([] if own_line else [{"event": "rpc", "code": "UNAVAILABLE",
                                         "duration_ms": rpc[0]["duration_ms"],
                                         "log_level": "info"}])
