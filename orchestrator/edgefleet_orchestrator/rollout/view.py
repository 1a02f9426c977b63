"""The state machine's view of an app's replicas, built from assignments and what each
online agent reports. Pure; called by the pass runner before each step.

A replica is *on target* when its online agent reports the new spec's hash (and the new
spec differs from the old, so a rollout to the same spec never counts anything as
updated); *healthy* when that report is ``running`` and its health is ``healthy`` (or,
for a spec without a health check, anything but ``unhealthy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgefleet_protocol import spec_hash
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import replica_spec
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.rollout.machine import SINGLE_WAVE, ReplicaView, RolloutView
from edgefleet_orchestrator.rollout.state import RolloutState


@dataclass(frozen=True, slots=True)
class BuiltView:
    view: RolloutView
    updated: int


def rollout_view(
    app: AppManifest,
    state: RolloutState,
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
) -> BuiltView:
    update = app.update_strategy
    hashes: dict[tuple[float, int], tuple[str, str]] = {}
    replicas: list[ReplicaView] = []
    for a in sorted(assignments, key=lambda a: a.replica):
        if a.app != app.name:
            continue
        key = (a.cpu, a.memory_mb)
        if key not in hashes:
            new = replica_spec(app.model_copy(update={"workload": state.to_workload}), *key)
            old = replica_spec(app.model_copy(update={"workload": state.from_workload}), *key)
            hashes[key] = (spec_hash(new), spec_hash(old))
        to_hash, from_hash = hashes[key]
        record = nodes.get(a.node)
        group = _group(update.waves, a, record)
        report = None
        if record is not None and record.state == "online" and record.reported is not None:
            report = record.reported.workloads.get(a.replica)
        if report is None:
            replicas.append(ReplicaView(a.replica, a.node, group))
            continue
        on_target = report.spec_hash == to_hash and to_hash != from_hash
        checked = state.to_workload.health is not None
        healthy = (
            on_target
            and report.state == "running"
            and (report.health == "healthy" if checked else report.health != "unhealthy")
        )
        back = report.rolled_back
        rolled_back = back.reason if back is not None and back.spec_hash == to_hash else None
        replicas.append(
            ReplicaView(
                a.replica,
                a.node,
                group,
                on_target=on_target,
                healthy=healthy,
                restarts=report.restarts,
                rolled_back=rolled_back,
            )
        )
    updated = sum(1 for r in replicas if r.on_target)
    return BuiltView(RolloutView(tuple(replicas), update), updated)


def _group(waves: str, a: Assignment, record: NodeRecord | None) -> str:
    if waves == "site":
        return a.site
    if waves == "region":
        caps = record.capabilities if record is not None else None
        return (caps.region if caps is not None else None) or "no-region"
    return SINGLE_WAVE
