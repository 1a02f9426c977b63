"""The autoscaling phase of a reconcile pass: verdicts before placement, the capacity cap
after it, and the notes that explain both.

Who calls it: :func:`edgefleet_orchestrator.reconcile.fleet_pass.reconcile`. Pure. Before placement,
:func:`evaluate` turns every autoscaled app's metric into a :class:`Verdict` and the app
is placed with the verdict's count — a trial for a scale-up. After placement,
:func:`cap` holds a scale-up to the replicas placement found room for (never more
replicas than can be placed; the shortfall and its reasons stay in the app status, not
as unplaced replicas the app never had). The count that survives is written into the
manifest by the shell (manifests stay authoritative).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from edgefleet_protocol import AutoscaleStatus, Unplaced
from edgefleet_protocol.manifest import AppManifest, with_replicas

from edgefleet_orchestrator.fleet.notes import Note
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.placement.model import AppPlacement, Assignment
from edgefleet_orchestrator.scaling.autoscale import (
    SERVICE_METRIC,
    ScaleMemory,
    Verdict,
    cap_to_placed,
    decide,
    observe,
    observe_service,
    settle,
    worth_an_event,
)

Evaluated = dict[str, tuple[Verdict, ScaleMemory]]


def evaluate(
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
    memory: Mapping[str, ScaleMemory],
    *,
    now: float,
) -> tuple[Evaluated, dict[str, AppManifest]]:
    """Verdicts for the autoscaled apps, and every app at the count to place it with."""
    evaluated: Evaluated = {}
    scaled = dict(apps)
    for name, app in sorted(apps.items()):
        spec = app.autoscale
        if spec is None:
            continue
        mine = [a for a in assignments if a.app == name]
        if spec.metric.startswith(SERVICE_METRIC):
            observation = observe_service(spec.metric, app.service_name, mine, nodes)
        else:
            observation = observe(spec.metric, mine, nodes)
        verdict, pending = decide(
            spec,
            current=app.replicas or 0,
            observation=observation,
            memory=memory.get(name, ScaleMemory()),
            now=now,
        )
        evaluated[name] = (verdict, pending)
        if verdict.changed:
            scaled[name] = with_replicas(app, verdict.replicas)
    return evaluated, scaled


def cap(verdict: Verdict, placement: AppPlacement) -> tuple[Verdict, AppPlacement]:
    """Hold a trial scale-up to what was placed; the placement is rewritten to match."""
    if verdict.replicas <= verdict.current or not placement.unplaced:
        return verdict, placement
    placed = verdict.replicas - placement.unplaced_count
    reasons = [reason for group in placement.unplaced for reason in group.reasons]
    capped = cap_to_placed(verdict, placed=placed, reasons=reasons)
    if placed >= capped.replicas:
        return capped, replace(placement, desired=capped.replicas, unplaced=())
    # Fewer than the current count fit (replicas lost their node): those stay unplaced.
    short = (Unplaced(count=capped.replicas - placed, reasons=reasons),)
    return capped, replace(placement, desired=capped.replicas, unplaced=short)


def settle_all(
    evaluated: Evaluated,
    placements: dict[str, AppPlacement],
    apps: Mapping[str, AppManifest],
    before: Mapping[str, ScaleMemory],
    *,
    now: float,
) -> tuple[dict[str, Verdict], dict[str, ScaleMemory], dict[str, AppManifest], list[Note]]:
    """Cap every verdict, then: the final verdicts, the memory to keep, the manifests whose
    count changed (to store), and one note per change (or per arrival at a stuck state).
    ``placements`` is updated in place for capped apps."""
    verdicts: dict[str, Verdict] = {}
    memory: dict[str, ScaleMemory] = {}
    rescaled: dict[str, AppManifest] = {}
    notes: list[Note] = []
    for name, (verdict, pending) in sorted(evaluated.items()):
        app = apps[name]
        if name in placements:
            verdict, placements[name] = cap(verdict, placements[name])
        verdicts[name] = verdict
        memory[name] = settle(pending, verdict, now)
        if verdict.changed:
            rescaled[name] = with_replicas(app, verdict.replicas)
        if worth_an_event(before.get(name, ScaleMemory()), verdict):
            notes.append(_note(name, app, verdict))
    return verdicts, memory, rescaled, notes


def status_of(app: AppManifest, verdict: Verdict, memory: ScaleMemory | None) -> AutoscaleStatus:
    """The ``autoscale`` block of the app's status."""
    spec = app.autoscale
    assert spec is not None
    return AutoscaleStatus(
        metric=spec.metric,
        target=spec.target,
        observed=verdict.observed,
        samples=verdict.samples,
        tolerance=spec.tolerance,
        min=spec.min,
        max=spec.max,
        wanted=verdict.wanted,
        replicas=verdict.replicas,
        state=verdict.state,
        reason=verdict.reason[:2048],
        limited_by=list(verdict.limited_by),
        last_scaled_at=memory.last_scaled_at if memory is not None else None,
    )


def _note(name: str, app: AppManifest, verdict: Verdict) -> Note:
    spec = app.autoscale
    assert spec is not None
    if verdict.changed:
        message = f"autoscale {name}: {verdict.current} -> {verdict.replicas} replicas: "
    else:
        message = f"autoscale {name}: stays at {verdict.replicas} replicas: "
    return Note(
        kind="autoscale",
        level="info" if verdict.state not in ("limited", "no-data") else "warning",
        app=name,
        message=message + verdict.reason,
        details={
            "metric": spec.metric,
            "observed": verdict.observed,
            "samples": verdict.samples,
            "target": spec.target,
            "tolerance": spec.tolerance,
            "from": verdict.current,
            "to": verdict.replicas,
            "wanted": verdict.wanted,
            "state": verdict.state,
            "limited_by": list(verdict.limited_by),
        },
    )
