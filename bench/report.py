"""The benchmark's results: medians over rounds, a Markdown table, the budget verdict, and JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

from bench.load import Measurement

# Our budget per request at c=1 (hot-path-costs.md): at most 1 ms of CPU and 1 ms of added p50.
BUDGET_CPU_US = 1000.0
BUDGET_ADDED_P50_MS = 1.0
# peers-bench.md, same kind of machine and method: CPU µs/req (non-stream, stream), added p50 at
# c=1 (non-stream, stream to last byte), added time to first byte p50 at c=1 (stream).
PEERS = {
    "Envoy plain proxy": (135, 135, 0.23, 0.18, 0.25),
    "Portkey 1.15.2": (1596, 1898, 1.9, 29.5, 29.6),
    "LiteLLM 1.106.2": (19514, 46389, 21.5, 43.4, 20.8),
}


@dataclass(frozen=True)
class TargetStats:
    """One target in one cell: the median of each figure over the rounds."""

    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None
    cpu_us_per_request: float | None
    first_error: str | None
    cpu_us_by_process: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, rounds: Sequence[Measurement], cpu_seconds: Sequence[float | None],
           parts: Sequence[Mapping[str, float]] = ()) -> TargetStats:
        cpu = [1e6 * s / m.requests for m, s in zip(rounds, cpu_seconds, strict=True)
               if s is not None and m.requests]
        names = list(dict.fromkeys(name for p in parts for name in p))
        by_process = {name: _median([1e6 * p[name] / m.requests
                                     for m, p in zip(rounds, parts, strict=True)
                                     if name in p and m.requests], 1) for name in names}
        return cls(
            requests=sum(m.requests for m in rounds),
            errors=sum(m.errors for m in rounds),
            rps=_median([m.rps for m in rounds], 1) or 0.0,
            p50_ms=_median([m.latency_ms(50) for m in rounds], 3),
            p99_ms=_median([m.latency_ms(99) for m in rounds], 3),
            ttfb_p50_ms=_median([m.first_byte_ms(50) for m in rounds], 3),
            cpu_us_per_request=_median(cpu, 1),
            first_error=next((m.first_error for m in rounds if m.first_error), None),
            cpu_us_by_process=by_process,
        )


@dataclass(frozen=True)
class Row:
    mode: str
    concurrency: int
    direct: TargetStats
    gateway: TargetStats

    @property
    def added_p50_ms(self) -> float | None:
        return _minus(self.gateway.p50_ms, self.direct.p50_ms)

    @property
    def added_ttfb_p50_ms(self) -> float | None:
        return _minus(self.gateway.ttfb_p50_ms, self.direct.ttfb_p50_ms)


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| mode | concurrency | direct req/s | gateway req/s | direct p50 ms | gateway p50 ms "
        "| added p50 ms | gateway p99 ms | added TTFB p50 ms | gateway CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [r.mode, str(r.concurrency), _num(r.direct.rps, 0), _num(r.gateway.rps, 0),
                 _num(r.direct.p50_ms, 2), _num(r.gateway.p50_ms, 2), _added(r.added_p50_ms),
                 _num(r.gateway.p99_ms, 2), _added(r.added_ttfb_p50_ms),
                 _num(r.gateway.cpu_us_per_request, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        for name, stats in (("direct", r.direct), ("gateway", r.gateway)):
            if stats.errors:
                lines.append(f"\nErrors: {name} {r.mode} c={r.concurrency}: {stats.errors} "
                             f"(first: {stats.first_error})")
    return "\n".join(lines)


def breakdown(rows: Sequence[Row]) -> str:
    """The gateway's CPU per request, process by process (medians over the rounds): where a
    regression is. The total is the gateway column above (NATS and the fake are not in it)."""
    names = list(dict.fromkeys(n for r in rows for n in r.gateway.cpu_us_by_process))
    lines = ["CPU µs per request by process, during the gateway's runs:", "",
             "| mode | concurrency | " + " | ".join(names) + " | gateway total |",
             "|---|---:|" + "---:|" * (len(names) + 1)]
    for r in rows:
        cells = [r.mode, str(r.concurrency),
                 *(_num(r.gateway.cpu_us_by_process.get(n), 0) for n in names),
                 _num(r.gateway.cpu_us_per_request, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: Sequence[Row], name: str = "Switchboard") -> str:
    """The c=1 rows against our budget, then against the peers."""
    at_c1 = {r.mode: r for r in rows if r.concurrency == 1}
    lines = [f"Budget at c=1: ≤ {BUDGET_CPU_US:,.0f} µs CPU and ≤ +{BUDGET_ADDED_P50_MS:.2f} ms "
             "p50 per request."]
    for mode, r in at_c1.items():
        cpu, added = r.gateway.cpu_us_per_request, r.added_p50_ms
        over = [what for what, value, limit in (("CPU", cpu, BUDGET_CPU_US),
                                                ("added p50", added, BUDGET_ADDED_P50_MS))
                if value is not None and value > limit]
        state = f"over budget ({', '.join(over)})" if over else "within budget"
        if cpu is None:
            state += "; CPU not measured (no gateway pids)"
        lines.append(f"- {mode}: {_num(cpu, 0)} µs CPU, {_added(added)} ms p50 — {state}")
    lines.append("Peers (peers-bench.md), CPU µs/req non-stream / stream, added p50 at c=1 "
                 "non-stream / stream, added TTFB p50 at c=1:")
    for peer, (cpu_ns, cpu_s, p50_ns, p50_s, ttfb) in PEERS.items():
        lines.append(f"- {peer}: {cpu_ns:,} / {cpu_s:,} µs, +{p50_ns} / +{p50_s} ms, +{ttfb} ms")
    ours = at_c1.get("non-stream")
    if ours is not None and ours.gateway.cpu_us_per_request:
        cpu = ours.gateway.cpu_us_per_request
        ratios = ", ".join(f"{_ratio(PEERS[p][0] / cpu)} less CPU than {p.split()[0]}"
                           for p in ("Portkey 1.15.2", "LiteLLM 1.106.2"))
        lines.append(f"- {name} non-stream c=1: {cpu:,.0f} µs, "
                     f"{_added(ours.added_p50_ms)} ms: {ratios}")
    return "\n".join(lines)


def as_json(rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "budget": {"cpu_us_per_request": BUDGET_CPU_US, "added_p50_ms": BUDGET_ADDED_P50_MS},
        "peers": {name: dict(zip(("cpu_us_non_stream", "cpu_us_stream", "added_p50_ms_non_stream",
                                  "added_p50_ms_stream", "added_ttfb_p50_ms"), v, strict=True))
                  for name, v in PEERS.items()},
        "rows": [{"mode": r.mode, "concurrency": r.concurrency, "direct": asdict(r.direct),
                  "gateway": asdict(r.gateway), "added_p50_ms": r.added_p50_ms,
                  "added_ttfb_p50_ms": r.added_ttfb_p50_ms} for r in rows],
    }


def _median(values: Sequence[float | None], digits: int) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), digits) if present else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}×" if value < 10 else f"{value:,.0f}×"


def _added(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"
