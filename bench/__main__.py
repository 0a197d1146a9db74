"""`python -m bench`: what Switchboard adds on top of an instant upstream, measured like the peers.

Starts the fake OpenAI upstream and the Switchboard stack on loopback, then for each mode and
concurrency runs a closed loop against the fake directly and through the gateway, interleaved,
for BENCH_ROUNDS rounds. Method and peers: /work/shared/research/peers-bench.md.

Environment (all optional):
  BENCH_SECONDS=5          measured seconds per cell and target
  BENCH_WARMUP_SECONDS=1   warm-up seconds before each measurement
  BENCH_ROUNDS=2           rounds; each figure is the median over them
  BENCH_CONCURRENCY=1,16,64
  BENCH_MAX_REQUESTS=200000  cap per measurement
  BENCH_TARGET_URL=http://127.0.0.1:PORT/v1  benchmark this base URL instead of starting the stack
  BENCH_TARGET_KEY=sk-bench  its bearer key;  BENCH_TARGET_PIDS=1,2  its pids, for CPU accounting
  BENCH_PIN=1              pin the gateway to core 0, the upstream and the load to core 1
  BENCH_KEYS=100000        keys added to auth's database for the admission figures (0: skip them)
  BENCH_TELEMETRY=metrics  the stack's telemetry: metrics (default), off (no metrics endpoints),
                           traces (metrics, and tracing installed with OTEL_TRACES_SAMPLER=always_off)
  BENCH_BUDGET_USD=1000000 the stack's requests use a key with this monthly budget (the common
                           request: reserved and settled on the router); 0: the master key, no budget
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from bench import admission, billing_consumer, cache, codecs, cpu, inbound, report, routing
from bench.load import ClosedLoop, Measurement, Workload
from bench.upstream import FakeUpstream

MODEL = "gpt-4o-mini"
MODES = ("non-stream", "stream")
# Two messages and max_tokens 64, as in peers-bench.md. The user message has 17 words, so the
# fake's echo streams as role + 18 content deltas + finish + usage + [DONE]: the peers' 22 events.
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write one short friendly sentence that greets a new colleague "
                                "on their very first day at work."},
]
UPSTREAM_KEY = "sk-bench"
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True)
class Settings:
    seconds: float = 5.0
    warmup: float = 1.0
    rounds: int = 2
    concurrencies: tuple[int, ...] = (1, 16, 64)
    max_requests: int = 200_000
    target_url: str | None = None
    target_key: str = UPSTREAM_KEY
    target_pids: tuple[int, ...] = ()
    pin: bool = True
    keys: int = 100_000
    budget_usd: int = 1_000_000
    telemetry: str = "metrics"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def read(name: str, parse, default):
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return parse(raw)
            except ValueError:
                sys.exit(f"bench: {name}={raw!r} is not valid")

        ints = lambda raw: tuple(int(x) for x in raw.split(",") if x.strip())  # noqa: E731
        return cls(
            seconds=read("BENCH_SECONDS", float, cls.seconds),
            warmup=read("BENCH_WARMUP_SECONDS", float, cls.warmup),
            rounds=read("BENCH_ROUNDS", int, cls.rounds),
            concurrencies=read("BENCH_CONCURRENCY", ints, cls.concurrencies),
            max_requests=read("BENCH_MAX_REQUESTS", int, cls.max_requests),
            target_url=env.get("BENCH_TARGET_URL") or None,
            target_key=env.get("BENCH_TARGET_KEY") or cls.target_key,
            target_pids=read("BENCH_TARGET_PIDS", ints, ()),
            pin=env.get("BENCH_PIN", "1") != "0",
            keys=read("BENCH_KEYS", int, cls.keys),
            budget_usd=read("BENCH_BUDGET_USD", int, cls.budget_usd),
            telemetry=read("BENCH_TELEMETRY", _telemetry, cls.telemetry),
        )


def _telemetry(raw: str) -> str:
    if raw not in ("metrics", "off", "traces"):
        raise ValueError(raw)
    return raw


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    key: str
    pids: tuple[int, ...]  # whose process trees' CPU is charged to this target
    stack: object | None = None  # the Switchboard stack we started, if we did
    # Processes whose CPU is also shown one by one (the stack's services, Envoy, NATS, the fake
    # upstream), so a regression shows where it is. Not all are part of `pids`.
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()


def workload(target: Target, mode: str) -> Workload:
    body: dict = {"model": MODEL, "messages": MESSAGES, "max_tokens": 64}
    if mode == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    return Workload(f"{target.base_url}/chat/completions", orjson.dumps(body), headers,
                    mode == "stream")


@contextlib.contextmanager
def gateway(settings: Settings, upstream_url: str, upstream_pid: int) -> Iterator[Target]:
    """The gateway under test: BENCH_TARGET_URL if set, else a Switchboard stack on the fake."""
    if settings.target_url:
        yield Target("gateway", settings.target_url.rstrip("/"), settings.target_key,
                     settings.target_pids)
        return
    from switchboard_stack import Stack, StackConfig  # only needed when we start the stack

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as data_dir:
        env = {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": upstream_url}
        if settings.telemetry == "traces":  # what tracing costs with every span sampled out
            env |= {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_off"}
        # Free ports and a NATS of its own, so the bench can run beside `make run` without
        # sharing its ports or its billing consumer's stream.
        config = StackConfig.ephemeral(Path(data_dir), env=env, own_nats=True,
                                       metrics=settings.telemetry != "off")
        stack = Stack(config, on_progress=lambda line: print(f"stack: {line}", file=sys.stderr))
        stack.start()
        try:
            key = budget_key(stack, settings.budget_usd) if settings.budget_usd else stack.master_key
            yield Target("gateway", stack.base_url.rstrip("/"), key,
                         tuple(stack.pids()), stack, _parts(stack, upstream_pid))
        finally:
            stack.stop()


def _parts(stack, upstream_pid: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    parts = [(name, (proc.pid,)) for name, proc in stack.services.items() if proc.pid]
    if stack.envoy is not None and stack.envoy.pid:
        parts.append(("envoy", (stack.envoy.pid,)))
    if stack.dashboard is not None and stack.dashboard.pid:  # off the request path: its own line
        parts.append(("dashboard", (stack.dashboard.pid,)))
    if stack.own_nats is not None and stack.own_nats.pid:
        parts.append(("nats", (stack.own_nats.pid,)))
    parts.append(("upstream fake", (upstream_pid,)))
    return tuple(parts)


def budget_key(stack, dollars: int) -> str:
    """A new key with a monthly budget (AILB's field, held by billing), as the common request has."""
    import httpx

    resp = httpx.post(stack.edge_url + "/api/keys", timeout=30,
                      headers={"authorization": f"Bearer {stack.master_key}"},
                      json={"name": "bench", "monthly_quota_dollars": dollars})
    if resp.status_code != 200:
        sys.exit(f"bench: could not make the bench key: {resp.status_code} {resp.text[:300]}")
    print(f"bench: requests use a key with a ${dollars:,} monthly budget", file=sys.stderr)
    return resp.json()["secret"]


async def check(target: Target) -> None:
    """One request first, so a misrouted gateway fails with its answer, not a table of errors."""
    w = workload(target, "non-stream")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(w.url, data=w.body, headers=w.headers) as response:
            text = await response.text()
    try:
        content = orjson.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        content = None
    if response.status != 200 or not str(content).startswith("Echo:"):
        sys.exit(f"bench: {target.name} at {target.base_url} answered {response.status}: "
                 f"{text[:500]}")


@dataclass(frozen=True)
class CellRun:
    measured: Measurement
    cpu_seconds: float | None  # the target's whole CPU
    parts: dict[str, float]  # CPU seconds of each of the target's parts


async def run_cell(settings: Settings, target: Target, mode: str, concurrency: int) -> CellRun:
    meter = cpu.CpuMeter(target.pids) if target.pids else None
    part_meters = {name: cpu.CpuMeter(pids) for name, pids in target.parts}
    async with ClosedLoop(workload(target, mode), concurrency) as load:
        await load.run(settings.warmup, settings.max_requests)
        for m in (meter, *part_meters.values()):
            if m:
                m.start()
        measured = await load.run(settings.seconds, settings.max_requests)
        spent = meter.stop() if meter else None
        parts = {name: m.stop() for name, m in part_meters.items()}
    return CellRun(measured, spent, parts)


async def measure(settings: Settings, direct: Target, gw: Target) -> list[report.Row]:
    await check(direct)
    await check(gw)
    runs: dict[tuple[str, int, str], list[CellRun]] = {}
    cells = [(mode, c) for mode in MODES for c in settings.concurrencies]
    total, done = settings.rounds * len(cells) * 2, 0
    for _ in range(settings.rounds):
        for mode, c in cells:
            # Both targets back to back in each cell, so drift on a shared machine hits both.
            for target in (direct, gw):
                run = await run_cell(settings, target, mode, c)
                m = run.measured
                runs.setdefault((mode, c, target.name), []).append(run)
                done += 1
                print(f"[{done}/{total}] {mode} c={c} {target.name}: {m.rps:,.0f} req/s, "
                      f"p50 {m.latency_ms(50) or 0:.2f} ms, errors {m.errors}",
                      file=sys.stderr, flush=True)

    def stats(mode: str, c: int, name: str) -> report.TargetStats:
        measured = runs[(mode, c, name)]
        return report.TargetStats.of([r.measured for r in measured],
                                     [r.cpu_seconds for r in measured],
                                     [r.parts for r in measured])

    return [report.Row(mode, c, stats(mode, c, "direct"), stats(mode, c, "gateway"))
            for mode, c in cells]


def require_loopback(url: str) -> None:
    if urlsplit(url).hostname != "127.0.0.1":
        sys.exit(f"bench: only 127.0.0.1 may be benchmarked, not {url}")


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": cpu.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def _event_loop_runner():
    try:
        import uvloop  # the load generator's own overhead is part of every latency it reports
    except ImportError:
        return asyncio.run
    return uvloop.run


def main() -> None:
    settings = Settings.from_env(os.environ)
    if settings.target_url:
        require_loopback(settings.target_url)
    pinned = settings.pin and cpu.cpu_count() >= 2
    cells = settings.rounds * len(MODES) * len(settings.concurrencies) * 2
    print(f"bench: {cells} runs of {settings.warmup:g} s warm-up + {settings.seconds:g} s "
          f"(about {cells * (settings.warmup + settings.seconds):.0f} s)", file=sys.stderr)
    meta = {"generated_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "machine": machine(), "pinned": pinned, "settings": asdict(settings)}
    with FakeUpstream(core=1 if pinned else None) as fake, \
            gateway(settings, fake.base_url, fake.pid) as gw:
        require_loopback(gw.base_url)
        if pinned:
            # As in peers-bench.md: the gateway on core 0; the upstream and the load on core 1.
            if gw.pids:
                cpu.pin(gw.pids, {0})
            os.sched_setaffinity(0, {1})
        direct = Target("direct", fake.base_url, UPSTREAM_KEY, (fake.pid,))
        meta["gateway"] = settings.target_url or "switchboard stack"
        rows = _event_loop_runner()(measure(settings, direct, gw))
        keyed = None
        hot = [(n, *_event_loop_runner()(admission.hot_path_us(n)))
               for n in sorted({1, 1000, settings.keys or 1})]
        if gw.stack is not None and settings.keys > 0:
            stack: Any = gw.stack
            body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 64}
            keyed = _event_loop_runner()(admission.run(
                stack.edge_url, stack.config.target("auth"), stack.data_dir, stack.master_key,
                gw.pids, body, keys=settings.keys, seconds=settings.seconds,
                warmup=settings.warmup))
    print(report.markdown(rows))
    print()
    if any(r.gateway.cpu_us_by_process for r in rows):
        print(report.breakdown(rows))
        print()
    print(report.verdict(rows, settings.target_url or "Switchboard"))
    print(billing_consumer.line())
    print("\nAdmission in the router's process (no I/O), the fastest of 400 batches of 500:")
    print(admission.hot_path_markdown(hot))
    meta["admission_in_process"] = [{"cached": n, "admit_us": a, "with_limits_us": b}
                                    for n, a, b in hot]
    if keyed is not None:
        print("\nAdmission (the same stack, after the table above):")
        print(admission.markdown(keyed))
        meta["admission"] = [asdict(f) for f in keyed]
    # Translation cost per provider format, in-process (the stack above runs OpenAI's).
    translation = codecs.measure()
    meta["codecs"] = translation
    print("\nCodec CPU per request and per stream (bench.codecs):\n" + codecs.table(translation))
    inbound_cost = inbound.measure()
    meta["inbound"] = inbound_cost
    print("\nInbound API translation CPU, on top of the codec's (bench.inbound):\n"
          + inbound.table(inbound_cost))
    decisions = _event_loop_runner()(routing.measure())
    meta["routing"] = decisions
    print("\nRouting cost per request, in-process (bench.routing):\n" + routing.table(decisions))
    cached = _event_loop_runner()(cache.measure())
    meta["cache"] = cached
    print("\nResponse cache per request, in-process (bench.cache):\n" + cache.table(cached))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report.as_json(rows, meta), indent=2, ensure_ascii=False) + "\n")
    print(f"\nJSON: {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
