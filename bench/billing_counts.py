"""`python -m bench.billing_counts`: what billing and NATS do per common request, counted.

Starts the stack (its own NATS) with billing run through bench/billing_probe.py, makes a key with
a monthly budget (the common request of `make bench`), warms up, then sends BENCH_COUNTS_REQUESTS
requests (default 3,000) at BENCH_COUNTS_CONCURRENCY (default 64), waits until billing has
consumed and acked every usage record, and prints per request: gRPC calls into billing by
method, SQL statements by verb and transactions, JetStream messages published to the usage
stream, billing's pulls, messages fetched and acks, and billing's CPU µs per request (timed, so
noisy here: the counts are the evidence). BENCH_COUNTS_MODE=stream sends streamed requests;
BENCH_COUNTS_PROFILE=path writes a cProfile of billing over the measured requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import subprocess
import urllib.request

import nats

from bench.__main__ import UPSTREAM_KEY, Target, budget_key, workload
from bench import cpu
from bench.load import ClosedLoop
from bench.upstream import FakeUpstream
from switchboard_common import events

_DURABLES = ("billing", "billing-batches")


def _snapshot(pid: int, out: Path) -> dict[str, float]:
    before = out.stat().st_mtime_ns if out.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.stat().st_mtime_ns != before:
            try:
                return json.loads(out.read_text())
            except ValueError:  # caught mid-write
                pass
        time.sleep(0.05)
    sys.exit("bench.billing_counts: billing's probe wrote no counters")


async def _usage_state(nats_url: str) -> tuple[int, bool]:
    """(messages ever stored in the usage stream, every durable has consumed and acked all)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = await js.stream_info(events.USAGE_STREAM)
        drained = True
        for durable in _DURABLES:
            try:
                info = await js.consumer_info(events.USAGE_STREAM, durable)
            except Exception:  # noqa: BLE001 - not made (no message of that subject yet)
                continue
            drained = drained and not info.num_pending and not info.num_ack_pending
        return stream.state.last_seq, drained
    finally:
        await nc.close()


def _drained(nats_url: str, settle_seconds: float = 0.5) -> int:
    """Wait until billing has acked every usage message; returns the stream's last sequence."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(settle_seconds)  # the router's last batch and its ack
        seq, drained = asyncio.run(_usage_state(nats_url))
        if drained:
            return seq
    sys.exit("bench.billing_counts: billing did not drain the usage stream in 120 s")


def _connz(monitor: int) -> dict[str, dict[str, int]]:
    """Messages each client connection sent to (in) and received from (out) NATS, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/connz?limit=1000", timeout=10) as r:
        conns = json.loads(r.read())["connections"]
    out: dict[str, dict[str, int]] = {}
    for c in conns:
        name = c.get("name") or f"cid {c['cid']}"
        totals = out.setdefault(name, {"in_msgs": 0, "out_msgs": 0})
        totals["in_msgs"] += c["in_msgs"]
        totals["out_msgs"] += c["out_msgs"]
    return out


def _start_nats(data_dir: Path) -> tuple[subprocess.Popen, str, int]:
    """A JetStream NATS with its monitoring port, so messages per connection can be read."""
    from switchboard_stack.config import free_port
    from switchboard_stack.nats_server import server_binary

    port, monitor = free_port(), free_port()
    (data_dir / "nats").mkdir(parents=True)
    proc = subprocess.Popen([server_binary(), "-a", "127.0.0.1", "-p", str(port), "-m",
                             str(monitor), "-js", "-sd", str(data_dir / "nats")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            _connz(monitor)
            return proc, f"nats://127.0.0.1:{port}", monitor
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("bench.billing_counts: nats-server did not start")


def _load(target: Target, mode: str, requests: int, concurrency: int) -> float:
    async def run() -> float:
        async with ClosedLoop(workload(target, mode), concurrency) as loop:
            measured = await loop.run(3600.0, requests)
        if measured.errors:
            sys.exit(f"bench.billing_counts: {measured.errors} errors ({measured.first_error})")
        return measured.rps

    return asyncio.run(run())


def count(upstream_url: str, mode: str, requests: int, concurrency: int,
          profile: str | None, idle_seconds: float = 5.0) -> tuple[dict[str, float], float, int]:
    """(billing's counters over the measured requests, req/s, JetStream messages published)."""
    from switchboard_stack import Stack, StackConfig

    with tempfile.TemporaryDirectory(prefix="switchboard-billing-counts-") as tmp:
        out = Path(tmp) / "probe.json"
        env = {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": upstream_url,
               "BENCH_PROBE_OUT": str(out)}
        if profile:
            env["BENCH_PROBE_PROFILE"] = str(Path(profile).resolve())
        nats_proc, nats_url, monitor = _start_nats(Path(tmp))
        config = StackConfig.ephemeral(
            Path(tmp) / "data", env=env, nats_url=nats_url,
            wrappers={"billing": (sys.executable, "-m", "bench.billing_probe")})
        stack = Stack(config, on_progress=lambda line: print(f"stack: {line}", file=sys.stderr))
        try:
            stack.start()
            billing = stack.services["billing"].pid
            assert billing is not None
            target = Target("gateway", stack.base_url.rstrip("/"), budget_key(stack, 1_000_000), ())
            _load(target, mode, max(requests // 5, 200), concurrency)  # leases, prices, caches
            seq_before = _drained(stack.nats_url)
            idle_from = _snapshot(billing, out)
            nats_before, nats_cpu = _connz(monitor), cpu.cpu_seconds([nats_proc.pid])
            time.sleep(idle_seconds)  # what billing spends with no load: timers, polls
            before = _snapshot(billing, out)
            rps = _load(target, mode, requests, concurrency)
            seq_after = _drained(stack.nats_url)
            after = _snapshot(billing, out)
            nats_after, nats_cpu = _connz(monitor), cpu.cpu_seconds([nats_proc.pid]) - nats_cpu
        finally:
            stack.stop()
            nats_proc.terminate()
            nats_proc.wait(10)
    keys = set(before) | set(after)
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    idle = (before["cpu_seconds"] - idle_from["cpu_seconds"]) / (
        before["wall_seconds"] - idle_from["wall_seconds"])
    diff["cpu_beyond_idle_seconds"] = diff["cpu_seconds"] - idle * diff["wall_seconds"]
    diff["idle_cpu_per_second"] = idle * requests  # shown per second, not per request
    diff["nats.server_cpu_seconds"] = nats_cpu  # from the idle window's start: timed, noisy
    for name, totals in nats_after.items():
        for what, n in totals.items():
            diff[f"natsconn.{name}.{what}"] = n - nats_before.get(name, {}).get(what, 0)
    return diff, rps, seq_after - seq_before


def table(diff: dict[str, float], published: int, requests: int) -> str:
    per = lambda key: diff.get(key, 0) / requests  # noqa: E731
    rows = [("JetStream messages published to the usage stream", published / requests)]
    rows += [(f"gRPC {k.removeprefix('grpc.')}", per(k)) for k in sorted(diff)
             if k.startswith("grpc.") and diff[k]]
    rows += [("SQL statements", per("sql.statements"))]
    rows += [(f"  {k.removeprefix('sql.')}", per(k)) for k in sorted(diff)
             if k.startswith("sql.") and k not in ("sql.statements",) and diff[k]]
    rows += [(f"transactions: {k.removeprefix('tx.')}", per(k)) for k in sorted(diff)
             if k.startswith("tx.") and diff[k]]
    rows += [(f"billing's NATS {k.removeprefix('nats.')}", per(k)) for k in sorted(diff)
             if k.startswith("nats.") and k != "nats.server_cpu_seconds" and diff[k]]
    rows += [(f"NATS messages {k.split('.')[-1].replace('_msgs', '')} of {k.split('.')[1]}",
              per(k)) for k in sorted(diff) if k.startswith("natsconn.") and diff[k]]
    rows += [(f"consumer {k.removeprefix('consumer.')}", per(k)) for k in sorted(diff)
             if k.startswith("consumer.") and diff[k]]
    rows += [("billing CPU µs (timed: noisy)", per("cpu_seconds") * 1e6)]
    rows += [("  of which beyond its idle rate", per("cpu_beyond_idle_seconds") * 1e6)]
    rows += [("nats-server CPU µs (timed: noisy; idle window included)",
              per("nats.server_cpu_seconds") * 1e6)]
    rows += [(f"  thread {k.removeprefix('cpu.')} CPU µs", per(k) * 1e6) for k in sorted(diff)
             if k.startswith("cpu.") and diff[k]]
    lines = ["| per request | count |", "|---|---:|"]
    lines += [f"| {name} | {value:,.4f} |" for name, value in rows]
    lines.append(f"\n(billing idle: {per('idle_cpu_per_second') * 1e3:,.1f} ms CPU per second; "
                 f"the measured window lasted {diff.get('wall_seconds', 0):,.1f} s)")
    return "\n".join(lines)


def main() -> None:
    requests = int(os.environ.get("BENCH_COUNTS_REQUESTS", "3000"))
    concurrency = int(os.environ.get("BENCH_COUNTS_CONCURRENCY", "64"))
    mode = os.environ.get("BENCH_COUNTS_MODE", "non-stream")
    profile = os.environ.get("BENCH_COUNTS_PROFILE") or None
    with FakeUpstream(core=None) as fake:
        diff, rps, published = count(fake.base_url, mode, requests, concurrency, profile)
    print(table(diff, published, requests))
    print(f"\n({requests:,} {mode} requests at concurrency {concurrency}, {rps:,.0f} req/s; "
          "a key with a $1,000,000 monthly budget)")


if __name__ == "__main__":
    main()
