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
from typing import Iterator, Mapping
from urllib.parse import urlsplit

import aiohttp
import orjson

from bench import cpu, report
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
        )


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    key: str
    pids: tuple[int, ...]  # whose process trees' CPU is charged to this target


def workload(target: Target, mode: str) -> Workload:
    body: dict = {"model": MODEL, "messages": MESSAGES, "max_tokens": 64}
    if mode == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    return Workload(f"{target.base_url}/chat/completions", orjson.dumps(body), headers,
                    mode == "stream")


@contextlib.contextmanager
def gateway(settings: Settings, upstream_url: str) -> Iterator[Target]:
    """The gateway under test: BENCH_TARGET_URL if set, else a Switchboard stack on the fake."""
    if settings.target_url:
        yield Target("gateway", settings.target_url.rstrip("/"), settings.target_key,
                     settings.target_pids)
        return
    from switchboard_stack import Stack, StackConfig  # only needed when we start the stack

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as data_dir:
        env = {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": upstream_url}
        # Free ports and a NATS of its own, so the bench can run beside `make run` without
        # sharing its ports or its billing consumer's stream.
        config = StackConfig.ephemeral(Path(data_dir), env=env, own_nats=True)
        stack = Stack(config, on_progress=lambda line: print(f"stack: {line}", file=sys.stderr))
        stack.start()
        try:
            yield Target("gateway", stack.base_url.rstrip("/"), stack.master_key,
                         tuple(stack.pids()))
        finally:
            stack.stop()


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


async def run_cell(settings: Settings, target: Target, mode: str, concurrency: int
                   ) -> tuple[Measurement, float | None]:
    meter = cpu.CpuMeter(target.pids) if target.pids else None
    async with ClosedLoop(workload(target, mode), concurrency) as load:
        await load.run(settings.warmup, settings.max_requests)
        if meter:
            meter.start()
        measured = await load.run(settings.seconds, settings.max_requests)
        spent = meter.stop() if meter else None
    return measured, spent


async def measure(settings: Settings, direct: Target, gw: Target) -> list[report.Row]:
    await check(direct)
    await check(gw)
    runs: dict[tuple[str, int, str], list[tuple[Measurement, float | None]]] = {}
    cells = [(mode, c) for mode in MODES for c in settings.concurrencies]
    total, done = settings.rounds * len(cells) * 2, 0
    for _ in range(settings.rounds):
        for mode, c in cells:
            # Both targets back to back in each cell, so drift on a shared machine hits both.
            for target in (direct, gw):
                m, spent = await run_cell(settings, target, mode, c)
                runs.setdefault((mode, c, target.name), []).append((m, spent))
                done += 1
                print(f"[{done}/{total}] {mode} c={c} {target.name}: {m.rps:,.0f} req/s, "
                      f"p50 {m.latency_ms(50) or 0:.2f} ms, errors {m.errors}",
                      file=sys.stderr, flush=True)

    def stats(mode: str, c: int, name: str) -> report.TargetStats:
        measured = runs[(mode, c, name)]
        return report.TargetStats.of([m for m, _ in measured], [s for _, s in measured])

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
    meta = {"generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "machine": machine(), "pinned": pinned, "settings": asdict(settings)}
    with FakeUpstream(core=1 if pinned else None) as fake, gateway(settings, fake.base_url) as gw:
        require_loopback(gw.base_url)
        if pinned:
            # As in peers-bench.md: the gateway on core 0; the upstream and the load on core 1.
            if gw.pids:
                cpu.pin(gw.pids, {0})
            os.sched_setaffinity(0, {1})
        direct = Target("direct", fake.base_url, UPSTREAM_KEY, (fake.pid,))
        meta["gateway"] = settings.target_url or "switchboard stack"
        rows = _event_loop_runner()(measure(settings, direct, gw))
    print(report.markdown(rows))
    print()
    print(report.verdict(rows, settings.target_url or "Switchboard"))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report.as_json(rows, meta), indent=2, ensure_ascii=False) + "\n")
    print(f"\nJSON: {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
