"""`python -m bench.instructions` (`make bench-instructions`): the router's instructions per common
request, counted by valgrind's callgrind, for each telemetry setting.

CPU seconds on a shared VM swing by a third between runs of the same tree (the closing notes
record it); an instruction count does not: the same build, inputs and settings give the same
count within a fraction of a percent, whatever else the machine runs. So this answers what a
timed run cannot: what metrics and tracing (sampling off) add to the common request, and, run on
two checkouts, what a change to the router's path costs or saves.

For each setting it starts the stack with only the router under callgrind (everything else runs
natively), sends warm-up requests, zeroes the counters, sends BENCH_INSTR_REQUESTS requests (a key
with a budget, as `make bench`'s common request), and dumps the counters: instructions / requests.
The count includes what the router's background tasks did meanwhile (ticks, NATS heartbeats),
which grows with the run's length: under a heavy load a run of the same tree counted up to ~14 %
more (README), so compare the settings of one run.

Environment: BENCH_INSTR_REQUESTS=300, BENCH_INSTR_CONCURRENCY=4, BENCH_INSTR_MODES=non-stream,stream,
BENCH_INSTR_TELEMETRY=off,metrics,traces; BENCH_INSTR_KEEP=DIR keeps each measured dump there
(`callgrind.<telemetry>.<mode>`) for `callgrind_annotate --inclusive=yes`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.__main__ import UPSTREAM_KEY, Target, budget_key, workload
from bench.load import ClosedLoop
from bench.upstream import FakeUpstream

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Count:
    telemetry: str
    mode: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def _env_list(name: str, default: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


def count(telemetry: str, modes: list[str], requests: int, concurrency: int,
          upstream_url: str) -> list[Count]:
    """Start a stack with the router under callgrind and count each mode's requests."""
    from switchboard_stack import Stack, StackConfig

    with tempfile.TemporaryDirectory(prefix="switchboard-instr-") as tmp:
        out = Path(tmp) / "callgrind"
        env = {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": upstream_url}
        if telemetry == "traces":
            env |= {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_off"}
        wrapper = ("valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no",
                   f"--callgrind-out-file={out}.%p")
        config = StackConfig.ephemeral(Path(tmp) / "data", env=env, own_nats=True,
                                       metrics=telemetry != "off", wrappers={"router": wrapper},
                                       ready_seconds=900.0)
        stack = Stack(config, on_progress=lambda line: print(f"stack: {line}", file=sys.stderr))
        stack.start()
        try:
            router = stack.services["router"].pid
            assert router is not None
            target = Target("gateway", stack.base_url.rstrip("/"), budget_key(stack, 1_000_000), ())
            counts = []
            for mode in modes:
                counts.append(Count(telemetry, mode, requests,
                                    _measure(router, out, target, telemetry, mode, requests,
                                             concurrency)))
                print(f"instructions: telemetry={telemetry} {mode}: "
                      f"{counts[-1].per_request:,.0f} per request", file=sys.stderr, flush=True)
            return counts
        finally:
            stack.stop()


def _measure(router: int, out: Path, target: Target, telemetry: str, mode: str, requests: int,
             concurrency: int) -> int:
    async def load(n: int, warming: bool = False) -> None:
        async with ClosedLoop(workload(target, mode), concurrency, request_timeout=120) as loop:
            measured = await loop.run(3600.0, n)
        # Warming up, the first calls to auth and billing may time out under valgrind's pace.
        if measured.errors and not warming:
            sys.exit(f"bench.instructions: {measured.errors} errors ({measured.first_error})")

    asyncio.run(load(max(requests // 5, 20), warming=True))  # connections, caches, leases
    _control(router, "--zero")
    asyncio.run(load(requests))
    dumps = set(out.parent.glob(f"{out.name}.{router}*"))
    _control(router, "--dump")
    new = sorted(set(out.parent.glob(f"{out.name}.{router}*")) - dumps)
    if not new:
        sys.exit("bench.instructions: callgrind wrote no dump")
    keep = os.environ.get("BENCH_INSTR_KEEP")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(new[-1], Path(keep) / f"callgrind.{telemetry}.{mode}")
    totals = _TOTALS.search(new[-1].read_bytes())
    if totals is None:
        sys.exit(f"bench.instructions: no instruction total in {new[-1]}")
    return int(totals.group(1))


def _control(pid: int, action: str) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], capture_output=True, timeout=300,
                   check=True)


def table(counts: list[Count]) -> str:
    base = {c.mode: c.per_request for c in counts if c.telemetry == "off"}
    lines = ["| telemetry | mode | router instructions / request | over telemetry off |",
             "|---|---|---:|---:|"]
    for c in counts:
        over = (f"{100 * (c.per_request / base[c.mode] - 1):+.1f} %"
                if c.mode in base and c.telemetry != "off" else "")
        lines.append(f"| {c.telemetry} | {c.mode} | {c.per_request:,.0f} | {over} |")
    return "\n".join(lines)


def main() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("bench.instructions needs valgrind (Debian: apt-get install valgrind)")
    requests = int(os.environ.get("BENCH_INSTR_REQUESTS", "300"))
    concurrency = int(os.environ.get("BENCH_INSTR_CONCURRENCY", "4"))
    modes = _env_list("BENCH_INSTR_MODES", "non-stream,stream")
    settings = _env_list("BENCH_INSTR_TELEMETRY", "off,metrics,traces")
    started = time.monotonic()
    counts: list[Count] = []
    with FakeUpstream(core=None) as fake:
        for telemetry in settings:
            counts += count(telemetry, modes, requests, concurrency, fake.base_url)
    print(table(counts))
    print(f"\n({requests} requests per row at concurrency {concurrency}, the router under "
          f"callgrind; {time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
