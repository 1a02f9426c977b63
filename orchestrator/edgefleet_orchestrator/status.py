"""App status and fleet summary: what dashboards and ``deploy --wait`` read.

Pure. Joins each app's assignments with what the hosting nodes report, so a replica's
state is the agent's word for it — or the reason the orchestrator cannot have that word
(node offline, not reported yet, running an older spec). Recomputed after every placement
pass and every ``reported`` change; published only when it changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgefleet_protocol import AppStatus, FleetSummary, ReplicaStatus, Unplaced, spec_hash

from edgefleet_orchestrator.manifest import AppManifest
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.registry import NodeRecord

TROUBLED = frozenset({"failed", "unhealthy", "node-offline", "node-stale"})


def replica_status(a: Assignment, want_hash: str, nodes: Mapping[str, NodeRecord]) -> ReplicaStatus:
    record = nodes.get(a.node)
    if record is None or record.state in ("offline", "unknown"):
        return ReplicaStatus(
            name=a.replica,
            node=a.node,
            site=a.site,
            state="node-offline",
            message=f"node {a.node} is offline; waiting for it or for the disconnect grace",
        )
    if record.state == "stale":
        return ReplicaStatus(
            name=a.replica,
            node=a.node,
            site=a.site,
            state="node-stale",
            message=f"nothing heard from node {a.node} recently",
        )
    reported = record.reported.workloads.get(a.replica) if record.reported else None
    if reported is None:
        return ReplicaStatus(
            name=a.replica,
            node=a.node,
            site=a.site,
            state="pending",
            message="not reported by the node yet",
        )
    if reported.spec_hash != want_hash:
        return ReplicaStatus(
            name=a.replica,
            node=a.node,
            site=a.site,
            state="updating",
            message=f"node runs {reported.spec_hash}, desired {want_hash}",
        )
    return ReplicaStatus(
        name=a.replica,
        node=a.node,
        site=a.site,
        state=reported.state,
        message=reported.message,
    )


def app_status(
    app: AppManifest,
    assignments: Sequence[Assignment],
    unplaced: Sequence[Unplaced],
    nodes: Mapping[str, NodeRecord],
    *,
    now: float,
) -> AppStatus:
    want = spec_hash(app.workload)
    replicas = [
        replica_status(a, want, nodes) for a in sorted(assignments, key=lambda a: a.replica)
    ]
    running = sum(1 for r in replicas if r.state == "running")
    missing = sum(u.count for u in unplaced)
    desired = len(assignments) + missing if app.is_daemon else (app.replicas or 0)
    if running == desired and not missing:
        state = "healthy"
    elif missing or any(r.state in TROUBLED for r in replicas):
        state = "degraded"
    else:
        state = "progressing"
    return AppStatus(
        app=app.name,
        state=state,
        mode="daemon" if app.is_daemon else "replicated",
        desired=desired,
        placed=len(assignments),
        running=running,
        replicas=replicas,
        unplaced=list(unplaced),
        updated_at=now,
    )


def fleet_summary(
    nodes: Mapping[str, NodeRecord], statuses: Mapping[str, AppStatus], *, now: float
) -> FleetSummary:
    states = [r.state for r in nodes.values()]
    return FleetSummary(
        ts=now,
        nodes_total=len(states),
        nodes_online=states.count("online"),
        nodes_offline=states.count("offline") + states.count("unknown"),
        nodes_stale=states.count("stale"),
        nodes_cordoned=sum(1 for r in nodes.values() if r.cordoned),
        apps_total=len(statuses),
        apps_healthy=sum(1 for s in statuses.values() if s.state == "healthy"),
        apps_degraded=sum(1 for s in statuses.values() if s.state == "degraded"),
        replicas_desired=sum(s.desired for s in statuses.values()),
        replicas_running=sum(s.running for s in statuses.values()),
    )


def same_status(a: AppStatus | None, b: AppStatus) -> bool:
    """Equal but for the timestamp: no need to republish."""
    return a is not None and a.model_copy(update={"updated_at": 0}) == b.model_copy(
        update={"updated_at": 0}
    )
