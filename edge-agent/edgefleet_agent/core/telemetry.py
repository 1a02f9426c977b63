"""Report-by-exception telemetry: decide, purely, what one telemetry message carries.

The collector samples the node every tick; :func:`decide` compares the sample with what was
last *sent* (not last sampled, so slow drifts are reported once they add up) and returns
only the values that moved past their deadband — or everything (``full: true``) when the
heartbeat is due. Receivers merge deltas into their last full view.

Values are flattened to ``path -> float`` with ``/`` separators (``workloads/w1/cpu_pct``,
``latency_ms/broker``, ``metrics/queue.depth``) so one comparison covers every kind, and
rounded first (compact payloads; rounding noise never counts as movement).

The idle-traffic arithmetic behind the defaults is in ``edge-agent/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from edgefleet_protocol import Telemetry, WorkloadUsage


@dataclass(frozen=True, slots=True)
class Deadbands:
    """How far a value must move before it is worth a message, per metric kind."""

    cpu: float = 5.0
    """Percentage points, node and per-workload ``cpu_pct``."""
    memory: float = 2.0
    """Percentage points, node and per-workload ``memory_pct``."""
    disk: float = 1.0
    """Percentage points of ``disk_pct``."""
    load: float = 0.5
    """Absolute change of the 1-minute load average."""
    workload_memory_mb: float = 5.0
    """Megabytes of a workload's resident memory."""
    latency_pct: float = 20.0
    latency_ms: float = 5.0
    """Latency must move by both ``latency_pct`` percent and ``latency_ms`` milliseconds."""
    metric_pct: float = 5.0
    """Custom metrics: percent of the last sent value (any change when that was 0)."""
    confirm_samples: float = 2
    """CPU and load are noisy: they must stay past their deadband for this many samples
    in a row before they are sent (1 = at once). A one-sample spike is not news; a real
    change costs one sample interval of delay."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of everything telemetry can carry; ``None`` = not measurable here."""

    cpu_pct: float | None = None
    memory_pct: float | None = None
    disk_pct: float | None = None
    load1: float | None = None
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    workloads: Mapping[str, WorkloadUsage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SentState:
    """What receivers know: the last value sent per path, and when the last full went;
    plus, per noisy path, how many samples in a row it has been past its deadband."""

    sent: Mapping[str, float] = field(default_factory=dict)
    last_full_at: float | None = None
    streaks: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    values: Mapping[str, float]
    full: bool


_NODE_DIGITS = {"cpu_pct": 1, "memory_pct": 1, "disk_pct": 1, "load1": 2}
_WORKLOAD_DIGITS = {"cpu_pct": 1, "memory_mb": 1, "memory_pct": 1}


def _round(value: float, digits: int) -> float:
    return round(float(value), digits)


def flatten(sample: Sample) -> dict[str, float]:
    """The sample as rounded ``path -> value`` pairs; missing values are left out."""
    flat: dict[str, float] = {}
    for key, digits in _NODE_DIGITS.items():
        value = getattr(sample, key)
        if value is not None:
            flat[key] = _round(value, digits)
    for name, ms in sample.latency_ms.items():
        flat[f"latency_ms/{name}"] = _round(ms, 2)
    for name, metric in sample.metrics.items():
        flat[f"metrics/{name}"] = _round(metric, 6)
    for workload, usage in sample.workloads.items():
        for key, digits in _WORKLOAD_DIGITS.items():
            value = getattr(usage, key)
            if value is not None:
                flat[f"workloads/{workload}/{key}"] = _round(value, digits)
        for name, metric in usage.metrics.items():
            flat[f"workloads/{workload}/metrics/{name}"] = _round(metric, 6)
    return flat


def moved(path: str, new: float, last: float, bands: Deadbands) -> bool:
    """Whether ``new`` is past the deadband around the last sent value ``last``."""
    delta = abs(new - last)
    if delta == 0:
        return False
    leaf = path.rsplit("/", 1)[-1]
    if path.startswith("latency_ms/"):
        return delta >= max(bands.latency_ms, abs(last) * bands.latency_pct / 100)
    if "/metrics/" in path or path.startswith("metrics/"):
        return last == 0 or delta >= abs(last) * bands.metric_pct / 100
    match leaf:
        case "cpu_pct":
            return delta >= bands.cpu
        case "memory_pct":
            return delta >= bands.memory
        case "memory_mb":
            return delta >= bands.workload_memory_mb
        case "disk_pct":
            return delta >= bands.disk
        case "load1":
            return delta >= bands.load
    return True


def is_noisy(path: str) -> bool:
    """CPU and load readings jitter with whatever else the gateway does."""
    return path.endswith("cpu_pct") or path == "load1"


def decide(
    sample: Sample, state: SentState, *, now: float, heartbeat_s: float, bands: Deadbands
) -> tuple[Decision | None, SentState]:
    """What to send now (``None``: nothing) and the state after sending it."""
    flat = flatten(sample)
    if state.last_full_at is None or now - state.last_full_at >= heartbeat_s:
        return Decision(values=flat, full=True), SentState(sent=flat, last_full_at=now)
    changed: dict[str, float] = {}
    streaks: dict[str, int] = {}
    for path, value in flat.items():
        if path in state.sent and not moved(path, value, state.sent[path], bands):
            continue
        if path in state.sent and is_noisy(path):
            streak = state.streaks.get(path, 0) + 1
            if streak < bands.confirm_samples:
                streaks[path] = streak
                continue
        changed[path] = value
    # Paths that vanished (a removed workload) are forgotten, so a reappearance is news.
    sent = {path: state.sent[path] for path in flat if path in state.sent}
    sent.update(changed)
    new_state = SentState(sent=sent, last_full_at=state.last_full_at, streaks=streaks)
    if not changed:
        return None, new_state
    return Decision(values=changed, full=False), new_state


def to_telemetry(decision: Decision, *, node: str, site: str, ts: float) -> Telemetry:
    """Unflatten a decision into the wire model."""
    top: dict[str, Any] = {"node": node, "site": site, "ts": round(ts, 3), "full": decision.full}
    latency: dict[str, float] = {}
    metrics: dict[str, float] = {}
    workloads: dict[str, dict[str, Any]] = {}
    for path, value in decision.values.items():
        head, _, rest = path.partition("/")
        if not rest:
            top[head] = value
        elif head == "latency_ms":
            latency[rest] = value
        elif head == "metrics":
            metrics[rest] = value
        elif head == "workloads":
            workload, _, key = rest.partition("/")
            usage = workloads.setdefault(workload, {})
            if key.startswith("metrics/"):
                usage.setdefault("metrics", {})[key.removeprefix("metrics/")] = value
            else:
                usage[key] = value
    return Telemetry.model_validate(
        {**top, "latency_ms": latency, "metrics": metrics, "workloads": workloads}
    )


def compact_json(telemetry: Telemetry) -> bytes:
    """The wire bytes without ``null``s, empty objects or ``full: false``: an idle
    gateway's bytes per second are mostly these messages, so every field left out counts."""
    data = _drop_empty(telemetry.model_dump(mode="json", exclude_none=True))
    if data.get("full") is False:
        del data["full"]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _drop_empty(value)
            if not value:
                continue
        out[key] = value
    return out
