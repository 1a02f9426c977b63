"""One node's bad data never ends a reconcile pass: find the node, isolate it, go on.

Pure. Who calls it: the pass runner (:mod:`edgefleet_orchestrator.service.passes`), around
:func:`~edgefleet_orchestrator.reconcile.fleet_pass.reconcile`. Why it exists: a node once
published ``cpu_cores: 1e308`` (valid JSON, accepted by the model then) and every pass
crashed with an ``OverflowError`` in placement arithmetic, for the whole fleet, again on
every restart while the retained message stayed (issue #12). The protocol models now bound
every number (:mod:`edgefleet_protocol.bounds`); this module is the second line, for the
bug nobody has found yet.

Two ways a node gets isolated, in this order:

1. :func:`screen`: a cheap check of every number placement and scaling read from the
   node's record (finite, inside the documented bound). Records only hold validated
   values, so this finds nothing unless a bound was missed somewhere.
2. The pass itself raises: :func:`reconcile_isolating` bisects the fleet (trial passes
   with half of the suspects isolated) to the one node without which the pass succeeds,
   isolates it and runs again; up to :data:`MAX_ISOLATED_PER_PASS` nodes per pass. A
   failure no single node explains (an app's data, a bug) is raised to the shell.

An isolated node is treated exactly like an offline one from the moment it was isolated
(its capabilities, telemetry and report are not read): nothing new is placed on it and
after each app's ``disconnect.grace_s`` its replicas run elsewhere. It stays isolated
until it publishes other capabilities (agents re-send them periodically); a node
isolated by :func:`screen` is released as soon as its record passes the screen again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from edgefleet_protocol import Capabilities
from edgefleet_protocol.bounds import (
    MAX_BANDWIDTH_MBPS,
    MAX_CPU_CORES,
    MAX_CPU_PCT,
    MAX_DISK_MB,
    MAX_LATENCY_MS,
    MAX_LOAD,
    MAX_MEMORY_MB,
    MAX_METRIC,
)

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, PassResult, reconcile

MAX_ISOLATED_PER_PASS = 8
"""More failing nodes than this in one pass is not one node's bad data: the pass fails."""


@dataclass(frozen=True, slots=True)
class Isolation:
    """A node the passes leave out, why, and since when. ``capabilities`` is the message
    it was isolated with (identity, not equality: a new message lifts it); ``screened``
    says :func:`screen` found it (lifted as soon as the record passes the screen)."""

    node: str
    site: str
    reason: str
    since: float
    capabilities: Capabilities | None = None
    screened: bool = False


def screen(record: NodeRecord) -> str | None:
    """Why this record's numbers cannot be used, or ``None`` when they all can."""
    for name, value, low, high in _numbers(record):
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"{name} is not a number ({type(value).__name__})"
        if not math.isfinite(value) or not low <= value <= high:
            return f"{name} = {value!r} is outside [{low}, {high}]"
    return None


def _numbers(record: NodeRecord) -> Iterable[tuple[str, object, float, float]]:
    caps = record.capabilities
    if caps is not None:
        yield "capabilities.cpu_cores", caps.cpu_cores, 0.001, MAX_CPU_CORES
        yield "capabilities.memory_mb", caps.memory_mb, 1, MAX_MEMORY_MB
        yield "capabilities.disk_mb", caps.disk_mb, 0, MAX_DISK_MB
        yield (
            "capabilities.network.bandwidth_mbps",
            caps.network.bandwidth_mbps,
            0,
            (MAX_BANDWIDTH_MBPS),
        )
    t = record.telemetry
    yield "telemetry.cpu_pct", t.cpu_pct, 0, MAX_CPU_PCT
    yield "telemetry.memory_pct", t.memory_pct, 0, 100
    yield "telemetry.disk_pct", t.disk_pct, 0, 100
    yield "telemetry.load1", t.load1, 0, MAX_LOAD
    for target, ms in t.latency_ms.items():
        yield f"telemetry.latency_ms.{target}", ms, 0, MAX_LATENCY_MS
    for metric, value in t.metrics.items():
        yield f"telemetry.metrics.{metric}", value, -MAX_METRIC, MAX_METRIC
    for workload, usage in t.workloads.items():
        yield f"telemetry.workloads.{workload}.cpu_pct", usage.cpu_pct, 0, MAX_CPU_PCT
        yield f"telemetry.workloads.{workload}.memory_mb", usage.memory_mb, 0, MAX_MEMORY_MB
        for metric, value in usage.metrics.items():
            yield (
                f"telemetry.workloads.{workload}.metrics.{metric}",
                value,
                -MAX_METRIC,
                (MAX_METRIC),
            )


def quarantined(record: NodeRecord, isolation: Isolation) -> NodeRecord:
    """The record as a pass sees an isolated node: offline since isolated, nothing read."""
    return replace(
        record,
        state="offline",
        offline_since=isolation.since,
        capabilities=None,
        telemetry=TelemetryView(),
        reported=None,
    )


def without(view: FleetView, isolated: Mapping[str, Isolation]) -> FleetView:
    """``view`` with every isolated node quarantined."""
    if not isolated:
        return view
    nodes = {
        name: quarantined(record, isolated[name]) if name in isolated else record
        for name, record in view.nodes.items()
    }
    return replace(view, nodes=nodes)


def reconcile_isolating(
    view: FleetView,
    known: Mapping[str, Isolation],
    *,
    run: Callable[[FleetView], PassResult] = reconcile,
) -> tuple[PassResult, dict[str, Isolation]]:
    """One pass that no single node's data can end. ``known`` are the isolations of the
    previous pass; returns the result and the isolations now in force (new ones have
    ``since == view.now``). Raises what the pass raised when no node explains it."""
    isolated = _still_isolated(view, known)
    for attempt in range(MAX_ISOLATED_PER_PASS + 1):
        try:
            return run(without(view, isolated)), isolated
        except Exception as exc:
            if attempt == MAX_ISOLATED_PER_PASS:
                raise
            culprit = _culprit(view, isolated, run)
            if culprit is None:
                raise
            record = view.nodes[culprit]
            isolated[culprit] = Isolation(
                node=culprit,
                site=record.site,
                reason=f"the reconcile pass fails with this node's data "
                f"({type(exc).__name__}: {str(exc)[:200]})",
                since=view.now,
                capabilities=record.capabilities,
            )
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _still_isolated(view: FleetView, known: Mapping[str, Isolation]) -> dict[str, Isolation]:
    isolated: dict[str, Isolation] = {}
    for name, record in view.nodes.items():
        previous = known.get(name)
        reason = screen(record)
        if reason is not None:
            since = previous.since if previous is not None else view.now
            isolated[name] = Isolation(
                name, record.site, reason, since, record.capabilities, screened=True
            )
        elif (
            previous is not None
            and not previous.screened
            and previous.capabilities is record.capabilities
        ):
            isolated[name] = previous  # the pass failed on it, and it sent nothing new since
    return isolated


def _culprit(
    view: FleetView,
    isolated: Mapping[str, Isolation],
    run: Callable[[FleetView], PassResult],
) -> str | None:
    """The one node whose isolation makes the pass succeed, by bisection; or ``None``."""
    suspects = sorted(n for n in view.nodes if n not in isolated)

    def fails_with(kept: list[str]) -> bool:
        left_out = {
            n: isolated.get(n) or Isolation(n, view.nodes[n].site, "trial", view.now)
            for n in view.nodes
            if n not in kept
        }
        try:
            run(without(view, left_out))
        except Exception:
            return True
        return False

    if not suspects or fails_with([]):
        return None  # fails with every suspect left out: not a node's data
    while len(suspects) > 1:
        half = suspects[: len(suspects) // 2]
        suspects = half if fails_with(half) else suspects[len(suspects) // 2 :]
    return suspects[0] if fails_with(suspects) else None


__all__ = [
    "MAX_ISOLATED_PER_PASS",
    "Isolation",
    "quarantined",
    "reconcile_isolating",
    "screen",
    "without",
]
