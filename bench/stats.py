"""Small pure helpers every scenario shares: percentiles, rates, and target rows.

A *row* is one line of the summary table: a case, a figure with its value, the target it
is held to, and whether it was met (``None`` for a figure without a target, shown for
context). Scenarios return rows; :mod:`bench.report` prints them, so every scenario's
figures and targets sit side by side in the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

Op = Literal["<=", ">="]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """p50, p90, p99, max and mean of latencies (seconds)."""
    return {
        "p50_s": round(percentile(values, 50), digits),
        "p90_s": round(percentile(values, 90), digits),
        "p99_s": round(percentile(values, 99), digits),
        "max_s": round(max(values), digits),
        "mean_s": round(sum(values) / len(values), digits),
    }


def cdf_points(values: Sequence[float], points: int = 200) -> list[float]:
    """At most ``points`` evenly spaced quantiles (always with the min and max): enough to
    draw a CDF without storing every sample in the results file."""
    if not values:
        return []
    ordered = sorted(values)
    if len(ordered) <= points:
        return [round(v, 4) for v in ordered]
    step = (len(ordered) - 1) / (points - 1)
    return [round(ordered[round(i * step)], 4) for i in range(points)]


def count_at(samples: Sequence[tuple[float, int]], when: float) -> float:
    """The cumulative count at ``when``, interpolated linearly between the samples either
    side of it (samples are (time, cumulative count), in time order)."""
    before = [(t, n) for t, n in samples if t <= when]
    after = [(t, n) for t, n in samples if t >= when]
    if not before or not after:
        raise ValueError(f"no samples on both sides of {when:.2f}")
    (t0, n0), (t1, n1) = before[-1], after[0]
    if t1 == t0:
        return float(n0)
    return n0 + (n1 - n0) * (when - t0) / (t1 - t0)


def rate(samples: Sequence[tuple[float, int]], start: float, end: float) -> float:
    """Events per second between ``start`` and ``end`` from (time, cumulative count)
    samples, the counts at both ends interpolated from the samples around them."""
    if end <= start:
        raise ValueError(f"empty window {start:.2f}..{end:.2f}")
    return (count_at(samples, end) - count_at(samples, start)) / (end - start)


def met(value: float, op: Op, target: float) -> bool:
    return value <= target if op == "<=" else value >= target


def row(
    case: str,
    figure: str,
    value: float | int,
    op: Op | None = None,
    target: float | None = None,
    *,
    key: bool = False,
) -> dict[str, Any]:
    """One summary line. Without ``op``/``target`` the figure is context, not a target;
    ``key`` context still belongs in the summary table (e.g. a baseline rate)."""
    line: dict[str, Any] = {"case": case, "figure": figure, "value": value}
    if key:
        line["key"] = True
    if op is not None and target is not None:
        line.update(op=op, target=target, met=met(float(value), op, target))
    else:
        line["met"] = None
    return line


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0:
        raise ValueError(f"cannot take a ratio to {denominator}")
    return numerator / denominator
