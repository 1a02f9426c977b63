"""A node's telemetry as the orchestrator holds it: the latest value of every field.

Agents report by exception (a message carries only what changed, with a periodic full
one), so the orchestrator merges each message into a :class:`TelemetryView`. Pure; the
:class:`~edgefleet_orchestrator.fleet.registry.Registry` calls it for every telemetry message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgefleet_protocol import Telemetry, WorkloadUsage

LATENCY_CHANGE_RATIO = 0.10
"""A latency probe must move by more than this fraction to matter to placement; smaller
wobbles would re-run placement on every telemetry message for nothing."""


def _no_values() -> Mapping[str, float]:
    return MappingProxyType({})


def _no_usage() -> Mapping[str, WorkloadUsage]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TelemetryView:
    """The node's latest value of every telemetry field, merged across partial messages."""

    ts: float | None = None
    cpu_pct: float | None = None
    memory_pct: float | None = None
    disk_pct: float | None = None
    load1: float | None = None
    latency_ms: Mapping[str, float] = field(default_factory=_no_values)
    metrics: Mapping[str, float] = field(default_factory=_no_values)
    workloads: Mapping[str, WorkloadUsage] = field(default_factory=_no_usage)


def merge_telemetry(view: TelemetryView, message: Telemetry) -> TelemetryView:
    """Report-by-exception merge: a partial message overwrites only the values it carries
    (dicts merge by key, workloads field by field); a ``full`` one replaces everything."""
    if message.full:
        return TelemetryView(
            ts=message.ts,
            cpu_pct=message.cpu_pct,
            memory_pct=message.memory_pct,
            disk_pct=message.disk_pct,
            load1=message.load1,
            latency_ms=MappingProxyType(dict(message.latency_ms)),
            metrics=MappingProxyType(dict(message.metrics)),
            workloads=MappingProxyType(dict(message.workloads)),
        )
    workloads = dict(view.workloads)
    for name, usage in message.workloads.items():
        workloads[name] = _merge_usage(workloads.get(name), usage)
    return TelemetryView(
        ts=message.ts,
        cpu_pct=_newer(message.cpu_pct, view.cpu_pct),
        memory_pct=_newer(message.memory_pct, view.memory_pct),
        disk_pct=_newer(message.disk_pct, view.disk_pct),
        load1=_newer(message.load1, view.load1),
        latency_ms=MappingProxyType({**view.latency_ms, **message.latency_ms}),
        metrics=MappingProxyType({**view.metrics, **message.metrics}),
        workloads=MappingProxyType(workloads),
    )


def merge_all(view: TelemetryView, messages: Sequence[Telemetry]) -> TelemetryView:
    """:func:`merge_telemetry` of each message in turn, with one copy of each workload's
    usage instead of one per message (a burst of one node's telemetry, coalesced)."""
    start = max((i for i, m in enumerate(messages) if m.full), default=0)
    if not messages:
        return view
    view = merge_telemetry(view, messages[start])
    rest = messages[start + 1 :]
    if not rest:
        return view
    last = rest[-1]
    scalars = {name: getattr(view, name) for name in ("cpu_pct", "memory_pct", "disk_pct", "load1")}
    latency, metrics = dict(view.latency_ms), dict(view.metrics)
    updates: dict[str, tuple[WorkloadUsage | None, dict[str, Any]]] = {}
    for message in rest:
        for name in scalars:
            scalars[name] = _newer(getattr(message, name), scalars[name])
        latency.update(message.latency_ms)
        metrics.update(message.metrics)
        for name, usage in message.workloads.items():
            if name not in updates:
                old = view.workloads.get(name)
                if old is None:  # a new workload starts as its first usage, as it is
                    updates[name] = (usage, {})
                    continue
                updates[name] = (old, {})
            _fold_usage(updates[name][1], usage)
    workloads = dict(view.workloads)
    for name, (first, update) in updates.items():
        assert first is not None
        workloads[name] = _apply_usage(first, update) if update else first
    return TelemetryView(
        ts=last.ts,
        latency_ms=MappingProxyType(latency),
        metrics=MappingProxyType(metrics),
        workloads=MappingProxyType(workloads),
        **scalars,
    )


def _fold_usage(update: dict[str, Any], usage: WorkloadUsage) -> None:
    for name in ("cpu_pct", "memory_mb", "memory_pct"):
        value = getattr(usage, name)
        if value is not None:
            update[name] = value
    update["metrics"] = {**update.get("metrics", {}), **usage.metrics}


def _apply_usage(base: WorkloadUsage, update: dict[str, Any]) -> WorkloadUsage:
    return base.model_copy(
        update={
            "cpu_pct": update.get("cpu_pct", base.cpu_pct),
            "memory_mb": update.get("memory_mb", base.memory_mb),
            "memory_pct": update.get("memory_pct", base.memory_pct),
            "metrics": {**base.metrics, **update["metrics"]},
        }
    )


def _merge_usage(old: WorkloadUsage | None, new: WorkloadUsage) -> WorkloadUsage:
    if old is None or _covers(new, old):
        return new  # equal to the merge below, without the copy (the usual case)
    return old.model_copy(
        update={
            "cpu_pct": _newer(new.cpu_pct, old.cpu_pct),
            "memory_mb": _newer(new.memory_mb, old.memory_mb),
            "memory_pct": _newer(new.memory_pct, old.memory_pct),
            "metrics": {**old.metrics, **new.metrics},
        }
    )


def _covers(new: WorkloadUsage, old: WorkloadUsage) -> bool:
    """Whether merging ``new`` into ``old`` gives ``new`` (every value ``old`` has, ``new``
    has too)."""
    return (
        (new.cpu_pct is not None or old.cpu_pct is None)
        and (new.memory_mb is not None or old.memory_mb is None)
        and (new.memory_pct is not None or old.memory_pct is None)
        and old.metrics.keys() <= new.metrics.keys()
    )


def _newer(new: float | None, old: float | None) -> float | None:
    return old if new is None else new


def latency_moved(before: Mapping[str, float], after: Mapping[str, float]) -> bool:
    """Whether a probe appeared, disappeared or moved by more than
    :data:`LATENCY_CHANGE_RATIO` of its previous value."""
    if before.keys() != after.keys():
        return True
    for target, old in before.items():
        new = after[target]
        if old == 0:
            if new != 0:
                return True
        elif abs(new - old) / old > LATENCY_CHANGE_RATIO:
            return True
    return False
