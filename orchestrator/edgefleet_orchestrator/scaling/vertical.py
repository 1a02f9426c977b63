"""Vertical sizing: new per-replica limits from observed usage, within the app's ``auto``
bounds and the node's free headroom.

Who calls it: the reconcile pass, before placement, for every app whose manifest has
``resources.auto``. Pure: assignments, node records (telemetry, capabilities, reports),
when each replica was last resized, and ``now`` in; the sizes to ask placement for and one
:class:`Resize` per change out. Placement applies a grown size only if it still fits the
node when the replica's turn comes (a resize never evicts), and the pass reports only the
resizes that were applied.

The rule, per replica and per sized dimension:

* CPU: ``observed cores / CPU_TARGET_UTILISATION`` — a replica at its limit (throttled)
  grows by ~43 % per step, one that idles shrinks toward what it uses.
* Memory: ``observed MB x MEMORY_HEADROOM`` — never below what it uses plus headroom, so
  shrinking a limit can never take memory a process holds.
* Both within ``min``..``max``; a change must be larger than :data:`DEADBAND` (or reach a
  bound) and wait ``cooldown_s`` since the replica's last resize, so noise resizes
  nothing. Growth is capped by what the node has free (capacity minus every reservation
  on it); a replica that cannot grow says so.
* A replica outside its bounds (the bounds just changed) is brought inside at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import runs
from edgefleet_orchestrator.placement.filters import millicores
from edgefleet_orchestrator.placement.model import Assignment, Size

CPU_TARGET_UTILISATION = 0.7
"""Size CPU so the observed use is 70 % of the limit: room for bursts, little waste."""

MEMORY_HEADROOM = 1.3
"""Size memory at 130 % of the observed use: a garbage collector or a burst has room."""

DEADBAND = 0.2
"""A change smaller than 20 % of the current limit is noise, not a reason to resize."""

DEFAULT_COOLDOWN_S = 60.0


@dataclass(frozen=True, slots=True)
class Resize:
    """One replica's new limits, and why."""

    app: str
    replica: str
    node: str
    before: Size
    after: Size
    reason: str


@dataclass(frozen=True, slots=True)
class SizingPlan:
    """``sizes``: app -> replica -> the size to ask placement for; ``resizes``: the
    changes among them; ``held``: replica -> why it could not grow (node full)."""

    sizes: dict[str, dict[str, Size]]
    resizes: list[Resize]
    held: dict[str, str]


def key(app: str, replica: str) -> str:
    """How resize times are keyed in the store (replica names are unique per app)."""
    return f"{app}/{replica}"


def plan_sizes(
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
    *,
    reserved: Iterable[Assignment] = (),
    resized_at: Mapping[str, float],
    now: float,
    cooldown_s: float = DEFAULT_COOLDOWN_S,
) -> SizingPlan:
    """Sizes for every replica of every ``auto`` app (see the module docstring).

    ``reserved`` are other reservations on the nodes (old copies of moving replicas).
    Without any ``auto`` app the plan is empty at the cost of a look at the manifests
    (every pass asks; the free room per node is worked out only when some app sizes).
    """
    sizes: dict[str, dict[str, Size]] = {}
    resizes: list[Resize] = []
    held: dict[str, str] = {}
    if all(app.workload.resources.auto is None for app in apps.values()):
        return SizingPlan(sizes, resizes, held)
    free_cpu_m, free_memory = _free(assignments, reserved, nodes)
    for a in sorted(assignments, key=lambda a: (a.app, a.replica)):
        app = apps.get(a.app)
        if app is None or app.workload.resources.auto is None:
            continue
        current = Size(a.cpu, a.memory_mb)
        wanted, why = _wanted(app, a, current, nodes, resized_at, now, cooldown_s)
        if wanted == current:
            continue
        grown_cpu_m = max(0, millicores(wanted.cpu) - millicores(current.cpu))
        grown_mb = max(0, wanted.memory_mb - current.memory_mb)
        room_cpu_m = free_cpu_m.get(a.node, 0)
        room_mb = free_memory.get(a.node, 0)
        if grown_cpu_m > room_cpu_m or grown_mb > room_mb:
            wanted, why = _within_room(current, wanted, room_cpu_m, room_mb, a.node, why)
            if wanted == current:
                held[a.replica] = why
                continue
            grown_cpu_m = max(0, millicores(wanted.cpu) - millicores(current.cpu))
            grown_mb = max(0, wanted.memory_mb - current.memory_mb)
        free_cpu_m[a.node] = room_cpu_m - grown_cpu_m
        free_memory[a.node] = room_mb - grown_mb
        sizes.setdefault(a.app, {})[a.replica] = wanted
        resizes.append(Resize(a.app, a.replica, a.node, current, wanted, why))
    return SizingPlan(sizes, resizes, held)


def _wanted(
    app: AppManifest,
    a: Assignment,
    current: Size,
    nodes: Mapping[str, NodeRecord],
    resized_at: Mapping[str, float],
    now: float,
    cooldown_s: float,
) -> tuple[Size, str]:
    auto = app.workload.resources.auto
    assert auto is not None
    bounded = Size(
        _clamp(current.cpu, auto.min_cpu, auto.max_cpu),
        int(_clamp(current.memory_mb, auto.min_memory_mb, auto.max_memory_mb)),
    )
    if bounded != current:
        return bounded, "brought inside the auto bounds"
    last = resized_at.get(key(a.app, a.replica))
    if last is not None and now - last < cooldown_s:
        return current, ""
    record = nodes.get(a.node)
    usage = record.telemetry.workloads.get(a.replica) if record is not None else None
    if usage is None or not runs(nodes, a.node, a.replica):
        return current, ""
    cpu, memory = current.cpu, current.memory_mb
    notes = []
    if auto.min_cpu is not None and auto.max_cpu is not None and usage.cpu_pct is not None:
        used = usage.cpu_pct / 100.0
        target = _clamp(_ceil_to(used / CPU_TARGET_UTILISATION, 0.01), auto.min_cpu, auto.max_cpu)
        if _worth_it(current.cpu, target, auto.min_cpu, auto.max_cpu):
            cpu = target
            notes.append(
                f"cpu {current.cpu:g} -> {target:g} cores (uses {used:.2f} cores, "
                f"{used / current.cpu:.0%} of its limit)"
            )
    low_mb, high_mb = auto.min_memory_mb, auto.max_memory_mb
    if low_mb is not None and high_mb is not None and usage.memory_mb is not None:
        target_mb = int(_clamp(math.ceil(usage.memory_mb * MEMORY_HEADROOM), low_mb, high_mb))
        if _worth_it(current.memory_mb, target_mb, low_mb, high_mb):
            memory = target_mb
            notes.append(
                f"memory {current.memory_mb} -> {target_mb} MB (uses {usage.memory_mb:.0f} MB)"
            )
    return Size(cpu, memory), "; ".join(notes)


def _within_room(
    current: Size, wanted: Size, room_cpu_m: int, room_mb: int, node: str, why: str
) -> tuple[Size, str]:
    """``wanted`` with its growth cut to the node's free room (a shrink is never cut)."""
    cpu_m = millicores(wanted.cpu)
    if cpu_m > millicores(current.cpu):
        cpu_m = min(cpu_m, millicores(current.cpu) + max(room_cpu_m, 0))
    memory = wanted.memory_mb
    if memory > current.memory_mb:
        memory = min(memory, current.memory_mb + max(room_mb, 0))
    cut = Size(cpu_m / 1000, memory)
    free = f"node {node} has {max(room_cpu_m, 0) / 1000:g} cores and {max(room_mb, 0)} MB free"
    if cut == current:
        return current, f"cannot grow: {free}"
    return cut, f"{why}; growth cut to the room left ({free})"


def _worth_it(current: float, target: float, low: float, high: float) -> bool:
    if target == current:
        return False
    if target in (low, high):
        return True  # reaching a bound is always worth it, however small the step
    return abs(target - current) > DEADBAND * current


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def _ceil_to(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 6)


def _free(
    assignments: Sequence[Assignment],
    reserved: Iterable[Assignment],
    nodes: Mapping[str, NodeRecord],
) -> tuple[dict[str, int], dict[str, int]]:
    """Free millicores and MB per node: capacity minus every reservation on it."""
    cpu_m: dict[str, int] = {}
    memory: dict[str, int] = {}
    for name, record in nodes.items():
        if record.capabilities is not None:
            cpu_m[name] = millicores(record.capabilities.cpu_cores)
            memory[name] = record.capabilities.memory_mb
    for a in (*assignments, *reserved):
        if a.node in cpu_m:
            cpu_m[a.node] -= millicores(a.cpu)
            memory[a.node] -= a.memory_mb
    return cpu_m, memory
