"""`python -m bench.billing_probe [python -m switchboard_billing]`: billing with counters around it.

bench/billing_counts.py runs billing through this wrapper (the stack's `wrappers`). It counts,
without touching billing's code: SQL statements (by verb, executemany counted once per call and
its rows beside) and transactions (begin, commit, rollback) on every SQLAlchemy engine; gRPC calls
per BillingService method; JetStream pulls, messages fetched, acks, naks and terms; and the
process's CPU seconds (every thread). SIGUSR1 writes the counters so far as JSON to
BENCH_PROBE_OUT (the reader takes differences between two writes). With BENCH_PROBE_PROFILE set
to a path, cProfile runs from the first SIGUSR1 and its stats are written there at each later one.
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import json
import os
import runpy
import signal
import sys
import time
from collections import Counter
from pathlib import Path

COUNTS: Counter[str] = Counter()


def _count_sql() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        COUNTS[f"sql.{verb}"] += 1
        COUNTS["sql.statements"] += 1
        if executemany:
            COUNTS["sql.executemany"] += 1
            COUNTS["sql.executemany_rows"] += len(parameters)

    for name in ("begin", "commit", "rollback"):
        event.listen(Engine, name, functools.partial(_transaction, name))


def _transaction(name: str, conn) -> None:
    COUNTS[f"tx.{name}"] += 1


def _count_grpc() -> None:
    from switchboard_billing import servicer

    cls = servicer.BillingServicer
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method):
            continue
        if inspect.isasyncgenfunction(method):
            continue  # exports: not on the request path
        setattr(cls, name, _counted_rpc(name, method))


def _counted_rpc(name: str, method):
    @functools.wraps(method)
    async def counted(self, request, context):
        COUNTS[f"grpc.{name}"] += 1
        return await method(self, request, context)

    return counted


def _count_nats() -> None:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    for name in ("ack", "nak", "term", "in_progress", "ack_sync"):
        original = getattr(Msg, name, None)
        if original is not None:
            setattr(Msg, name, _counted_async(f"nats.{name}", original))
    pull = JetStreamContext.PullSubscription
    fetch = pull.fetch

    @functools.wraps(fetch)
    async def counted_fetch(self, *args, **kwargs):
        COUNTS["nats.fetch_calls"] += 1
        messages = await fetch(self, *args, **kwargs)
        COUNTS["nats.messages_fetched"] += len(messages)
        return messages

    pull.fetch = counted_fetch  # type: ignore[method-assign]


def _counted_async(key: str, original):
    @functools.wraps(original)
    async def counted(self, *args, **kwargs):
        COUNTS[key] += 1
        return await original(self, *args, **kwargs)

    return counted


def _count_records() -> None:
    from switchboard_billing import consumer

    store = consumer.UsageConsumer.store

    @functools.wraps(store)
    async def counted_store(self, entries):
        COUNTS["consumer.store_calls"] += 1
        COUNTS["consumer.records"] += len(entries)
        return await store(self, entries)

    consumer.UsageConsumer.store = counted_store  # type: ignore[method-assign]


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each of this process's threads ("cpu.main", "cpu.<tid>"); a thread's OS
    name is the process's, so its id tells them apart."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = "main" if int(task.name) == os.getpid() else task.name
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"cpu.{name}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


class _Dumper:
    def __init__(self, out: Path, profile_out: str | None) -> None:
        self._out = out
        self._profile_out = profile_out
        self._profiler: cProfile.Profile | None = None

    def __call__(self, signum, frame) -> None:
        snapshot: dict[str, float] = dict(COUNTS)
        snapshot["cpu_seconds"] = time.process_time()
        snapshot["wall_seconds"] = time.monotonic()
        snapshot.update(_thread_cpu())
        self._out.write_text(json.dumps(snapshot))
        if self._profile_out:
            if self._profiler is None:
                self._profiler = cProfile.Profile(time.thread_time)  # CPU, not waits
                self._profiler.enable()
            else:
                self._profiler.disable()
                self._profiler.dump_stats(self._profile_out)
                self._profiler.enable()


def main() -> None:
    # The stack's command follows: [python, -m, switchboard_billing]; run that module here.
    args = sys.argv[1:]
    module = args[args.index("-m") + 1] if "-m" in args else "switchboard_billing"
    _count_sql()
    _count_grpc()
    _count_nats()
    _count_records()
    signal.signal(signal.SIGUSR1, _Dumper(Path(os.environ["BENCH_PROBE_OUT"]),
                                          os.environ.get("BENCH_PROBE_PROFILE")))
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
