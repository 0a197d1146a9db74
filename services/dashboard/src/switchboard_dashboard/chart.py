"""Usage over time as a stacked bar chart by model, drawn as plain SVG on the server (no JS).

Billing groups spend by hour and model (GET /api/billing/spend?group_by=hour,model); this lays
those groups out as one bar per hour of the window, one coloured segment per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 56, 24, 10
# Colour-blind-safe (Okabe-Ito); models past the palette's length reuse it.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str  # the tooltip: hour, model and value


@dataclass(frozen=True)
class Chart:
    metric: str
    segments: list[Segment]
    legend: list[tuple[str, str]]  # (model, colour)
    y_max: float
    x_labels: list[tuple[float, str]]  # (x, "HH:00")
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM
    top: int = TOP

    @property
    def empty(self) -> bool:
        return not self.segments


def hours(end: datetime, count: int) -> list[str]:
    """The `count` hour buckets ending with the one holding `end`, as billing names them."""
    last = end.replace(minute=0, second=0, microsecond=0)
    return [(last - timedelta(hours=count - 1 - i)).strftime("%Y-%m-%dT%H:00:00Z") for i in range(count)]


def _value(totals: dict[str, Any], metric: str) -> float:
    if metric == "cost":
        return float(totals.get("cost_micros_usd", 0)) / 1_000_000
    return float(totals.get(metric, 0))


def build(groups: list[dict[str, Any]], buckets: list[str], metric: str) -> Chart:
    """`metric`: "requests", "total_tokens" or "cost" (dollars)."""
    models = sorted({g.get("model", "") for g in groups})
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    per_hour: dict[str, list[tuple[str, float]]] = {b: [] for b in buckets}
    for group in groups:
        hour = group.get("hour", "")
        value = _value(group.get("totals", {}), metric)
        if hour in per_hour and value > 0:
            per_hour[hour].append((group.get("model", ""), value))
    y_max = max((sum(v for _, v in items) for items in per_hour.values()), default=0.0)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(buckets), 1)
    segments, labels = [], []
    for i, hour in enumerate(buckets):
        x = LEFT + i * slot
        if i % 3 == 0:
            labels.append((x + slot / 2, hour[11:16]))
        base = float(HEIGHT - BOTTOM)
        for model, value in sorted(per_hour[hour]):
            h = plot_h * value / y_max
            base -= h
            shown = f"${value:.6f}" if metric == "cost" else f"{value:g}"
            segments.append(Segment(x + slot * 0.15, base, slot * 0.7, h, colors[model],
                                    f"{hour[:13]}:00 UTC · {model}: {shown}"))
    return Chart(metric, segments, [(m, colors[m]) for m in models], y_max, labels)
