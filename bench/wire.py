"""`python -m bench.wire` (`make bench-wire`): what one request costs on the wire between the
client, Envoy and the router, counted rather than timed.

CPU time per request on a shared machine swings with its load; what each process does per
request swings much less: its system calls by kind, its context switches, the TCP segments and
HTTP/2 frames the router sends Envoy per answer. edge/README.md ("Cost") reads them to say which
peer's writes wake Envoy. It starts `make bench`'s stack (the fake upstream, its own NATS, metrics
on), pins the gateway to core 0 and wrk to core 1, and for each mode runs wrk at concurrency 64
(one write per request, as peer-bench's compare.sh does), counting with `perf stat` on the
syscall tracepoints, /proc/<pid>/task/*/status and `ss -ti` on the router's port (a run's
counts include the requests still in flight at its end: a few percent). Frames per answer come
from a last short run at concurrency 8 with Envoy's http2 logger at trace level.

Needs wrk and perf (Debian: wrk, linux-perf). Environment: BENCH_WIRE_SECONDS=8,
BENCH_WIRE_CONCURRENCY=64, BENCH_WIRE_MODES=non-stream,stream, BENCH_WIRE_FRAMES=1 (0: skip).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench import cpu
from bench.__main__ import MESSAGES, MODEL, UPSTREAM_KEY, budget_key
from bench.upstream import FakeUpstream

SYSCALLS = ("readv", "writev", "read", "write", "sendto", "recvfrom", "sendmsg", "recvmsg",
            "epoll_wait", "epoll_pwait", "futex")
_WRK_LUA = """local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
done = function(summary) io.write(string.format("WRK_REQUESTS %d\\n", summary.requests)) end
"""
FRAME_TYPES = {"0": "DATA", "1": "HEADERS", "3": "RST_STREAM", "4": "SETTINGS", "6": "PING",
               "7": "GOAWAY", "8": "WINDOW_UPDATE"}


def context_switches(pid: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    out[name.split("_")[0]] += int(value)
        except FileNotFoundError:
            continue  # the thread ended
    return out


def router_segments(port: int) -> Counter[str]:
    """TCP counters of the router's side of its connections (Envoy's, and its health checks')."""
    text = subprocess.run(["ss", "-tin", "state", "established", f"( sport = :{port} )"],
                          capture_output=True, text=True, check=True).stdout
    return Counter({key: sum(int(v) for v in re.findall(rf"\b{key}:(\d+)", text))
                    for key in ("data_segs_out", "data_segs_in", "bytes_sent", "bytes_received")})


class Syscalls:
    """`perf stat` on one process's syscall tracepoints, every thread."""

    def __init__(self, pid: int, out: Path):
        self.out = out
        events = ",".join(["raw_syscalls:sys_enter", *(f"syscalls:sys_enter_{s}" for s in SYSCALLS)])
        self._perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", str(pid),
                                       "-o", str(out)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)

    def stop(self) -> Counter[str]:
        self._perf.send_signal(2)
        self._perf.wait(timeout=30)
        counts: Counter[str] = Counter()
        for line in self.out.read_text().splitlines():
            fields = line.split(",")
            if len(fields) > 3 and fields[0].isdigit():
                name = fields[2].split(":")[-1].removeprefix("sys_enter_")
                counts["all" if name == "sys_enter" else name] = int(fields[0])
        return counts


def wrk(url: str, key: str, mode: str, concurrency: int, seconds: int, tmp: Path) -> int:
    body: dict = {"model": MODEL, "messages": MESSAGES, "max_tokens": 64}
    if mode == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    (tmp / "body.json").write_text(json.dumps(body))
    (tmp / "post.lua").write_text(_WRK_LUA)
    env = {**os.environ, "WRK_BODY_FILE": str(tmp / "body.json"), "WRK_AUTH": f"Bearer {key}"}
    run = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s",
                          "-s", str(tmp / "post.lua"), url], capture_output=True, text=True, env=env)
    found = re.search(r"WRK_REQUESTS (\d+)", run.stdout)
    if run.returncode or not found or "Non-2xx" in run.stdout:
        sys.exit(f"bench.wire: wrk failed: {run.stdout[-1000:]} {run.stderr[-1000:]}")
    return int(found.group(1))


_FRAME = re.compile(r'"ConnectionId":"(\d+)"\] (?:about to (recv)|(sent)) frame type=(\d+), '
                    r'(?:flags=(\d+), )?stream_id=(\d+)')


def frames(admin: int, log: Path, url: str, key: str, mode: str, tmp: Path) -> dict[str, float]:
    """HTTP/2 frames per answer on Envoy's connection to the router (the one with the most
    frames; the health checks have their own), over the streams the router ended."""
    def level(value: str) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{admin}/logging?http2={value}", method="POST"), timeout=10).read()

    level("trace")
    try:
        start = log.stat().st_size
        wrk(url, key, mode, 8, 3, tmp)
        time.sleep(1.0)  # the launcher copies Envoy's log from a pipe
        text = log.read_bytes()[start:].decode(errors="replace")
    finally:
        level("warning")
    seen = _FRAME.findall(text)
    if not seen:
        return {}
    busiest = Counter(conn for conn, *_ in seen).most_common(1)[0][0]
    ours = [(recv or sent, kind, int(flags or 0), int(stream))
            for conn, recv, sent, kind, flags, stream in seen if conn == busiest]
    # A HEADERS frame from the router with END_STREAM (flag 1): the trailers that end an answer.
    ended = {stream for way, kind, flags, stream in ours if way == "recv" and kind == "1" and flags & 1}
    counted = Counter(f"{'router→envoy' if way == 'recv' else 'envoy→router'} {FRAME_TYPES.get(kind, kind)}"
                      for way, kind, _, stream in ours if stream in ended or stream == 0)
    # Each read Envoy hands its codec ("dispatching N bytes"), on that connection.
    counted["envoy reads of the router's connection"] = len(re.findall(
        rf'"ConnectionId":"{busiest}"\] dispatching \d+ bytes', text))
    return {name: count / len(ended) for name, count in sorted(counted.items())} if ended else {}


def measure(mode: str, stack, key: str, seconds: int, concurrency: int, tmp: Path) -> dict[str, float]:
    envoy, router = stack.envoy.pid, stack.services["router"].pid
    port = stack.config.grpc_ports["router"]
    url = stack.base_url + "/chat/completions"
    wrk(url, key, mode, concurrency, 2, tmp)  # warm-up: connections, caches
    ctx0 = {"envoy": context_switches(envoy), "router": context_switches(router)}
    seg0 = router_segments(port)
    meters = {"envoy": Syscalls(envoy, tmp / "envoy.perf"), "router": Syscalls(router, tmp / "router.perf")}
    time.sleep(0.3)  # perf attached
    n = wrk(url, key, mode, concurrency, seconds, tmp)
    row: dict[str, float] = {"requests": n}
    for name, meter in meters.items():
        row |= {f"{name} syscalls {k}": v / n for k, v in meter.stop().items() if v}
        ctx = context_switches(envoy if name == "envoy" else router)
        row |= {f"{name} {k} switches": (ctx[k] - ctx0[name][k]) / n for k in ctx}
    seg = router_segments(port)
    row |= {f"router {k}": (seg[k] - seg0[k]) / n for k in seg}
    return row


def main() -> None:
    missing = [tool for tool in ("wrk", "perf", "ss", "taskset") if shutil.which(tool) is None]
    if missing or cpu.cpu_count() < 2:
        sys.exit(f"bench.wire needs two cores and {', '.join(missing) or 'them'}")
    seconds = int(os.environ.get("BENCH_WIRE_SECONDS", "8"))
    concurrency = int(os.environ.get("BENCH_WIRE_CONCURRENCY", "64"))
    modes = [m for m in os.environ.get("BENCH_WIRE_MODES", "non-stream,stream").split(",") if m]
    from switchboard_stack import Stack, StackConfig

    with tempfile.TemporaryDirectory(prefix="switchboard-wire-") as tmpdir, \
            FakeUpstream(core=1) as fake:
        tmp = Path(tmpdir)
        config = StackConfig.ephemeral(tmp / "data", own_nats=True, env={
            "OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": fake.base_url})
        stack = Stack(config, on_progress=lambda line: print(f"stack: {line}", file=sys.stderr))
        stack.start()
        try:
            nats = stack.own_nats.pid if stack.own_nats else None
            cpu.pin([*stack.pids(), *([nats] if nats else [])], {0})
            key = budget_key(stack, 1_000_000)
            for mode in modes:
                row = measure(mode, stack, key, seconds, concurrency, tmp)
                if os.environ.get("BENCH_WIRE_FRAMES", "1") != "0":
                    row |= frames(config.edge_admin_port, stack.logs / "envoy.log",
                                  stack.base_url + "/chat/completions", key, mode, tmp)
                print(f"\n{mode}, c={concurrency}, per request ({row.pop('requests'):.0f} requests):")
                for name, value in row.items():
                    print(f"  {name:<40} {value:8.2f}")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
