"""App status and fleet summary: what dashboards and ``deploy --wait`` read.

Pure. Joins each app's assignments with what the hosting nodes report, so a replica's
state is the agent's word for it — or the reason the orchestrator cannot have that word
(node offline, not reported yet, running an older spec). Recomputed after every placement
pass and every ``reported`` change; published only when it changed.

Each replica is compared with its *own* spec hash (apps sized by the orchestrator run
different limits per replica; under a rollout, a replica not yet released runs the
previous revision's spec, and that is what it is compared with). The old copy of a
replica that moves make-before-break (drain, rebalancing, a rollout) is listed as
``retiring``, and ``running`` counts each replica name once, whichever copy runs: that is
the number a drain promises never to take below ``replicas - max_unavailable``, and a
rollout with spare capacity never below ``replicas``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgefleet_protocol import (
    AppStatus,
    AutoscaleStatus,
    FleetSummary,
    ReplicaStatus,
    Unplaced,
    spec_hash,
)
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import replica_spec, reported_state
from edgefleet_orchestrator.placement.model import AppPlacement, Assignment
from edgefleet_orchestrator.reconcile.compliance import MAX_LISTED
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.rollout.specs import RolloutSpecs
from edgefleet_orchestrator.rollout.state import RolloutState
from edgefleet_orchestrator.scaling.autoscale import Verdict
from edgefleet_orchestrator.scaling.counts import status_of
from edgefleet_orchestrator.scaling.moves import Retiring

TROUBLED = frozenset({"failed", "unhealthy", "node-offline", "node-stale"})

ROW_TEXT_BUDGET = 256 * 1024
"""About how many bytes of replica rows an app status lists (docs/protocol.md, App status).
The status is one retained MQTT message, and a broker drops the connection of a client
that publishes a packet over its limit (1 MiB in the generated config): a daemon app's
status on 10,000 nodes was 1.0-1.5 MB, and the orchestrator lost its connection on every
such status it published (then reconnected, republished every document, settled, and
published it again). A quarter of the limit leaves room for JSON escapes and UTF-8."""

_ROW_OVERHEAD = 80  # keys, quotes and numbers of one row besides its strings


def row_text_size(r: ReplicaStatus) -> int:
    """What one row costs against :data:`ROW_TEXT_BUDGET`: its strings' lengths and a
    fixed allowance for keys, quotes and numbers (never less than the row's JSON without
    escapes, so the budget is never overrun; counted, not encoded, for speed)."""
    return (
        _ROW_OVERHEAD + len(r.name) + len(r.node or "") + len(r.site or "") + len(r.state)
        + len(r.message)
    )  # fmt: skip


def listed_rows(rows: list[ReplicaStatus]) -> tuple[list[ReplicaStatus], int]:
    """The rows an app status lists and how many it leaves out: all of them while they
    fit :data:`ROW_TEXT_BUDGET`; otherwise those not running first, then the running ones
    (each group in its given order), as many as fit, stopping at the first that does not
    (the list stays a prefix of that order: what is left out is always the tail)."""
    sizes = [row_text_size(r) for r in rows]
    if sum(sizes) <= ROW_TEXT_BUDGET:
        return rows, 0
    order = sorted(range(len(rows)), key=lambda i: rows[i].state == "running")  # stable
    listed, budget = [], ROW_TEXT_BUDGET
    for i in order:
        if sizes[i] > budget:
            break
        budget -= sizes[i]
        listed.append(rows[i])
    return listed, len(rows) - len(listed)


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


class RowMemo:
    """Kept by the shell's status board: each replica's row from the last computation,
    reused while its inputs are unchanged (the same assignment, wanted hash, and node
    record: records are replaced on every change). Why: a daemon app's status is computed
    again after every batch of reports, and building its 10,000 validated rows each time
    was most of the orchestrator's work while a 10,000-node deploy converged. Rows of
    replicas not seen in the last computation are dropped (:meth:`new_round`)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[Assignment, str, object, ReplicaStatus]] = {}
        self._this: dict[tuple[str, str], tuple[Assignment, str, object, ReplicaStatus]] = {}

    def new_round(self) -> None:
        self._last, self._this = self._this, {}

    def row(self, a: Assignment, want: str, nodes: Mapping[str, NodeRecord]) -> ReplicaStatus:
        key = (a.app, a.replica)
        record = nodes.get(a.node)
        found = self._this.get(key) or self._last.get(key)
        if found is not None and found[2] is record and found[1] == want and found[0] == a:
            row = found[3]
        else:
            row = replica_status(a, want, nodes)
        self._this[key] = (a, want, record, row)
        return row


def app_status(
    app: AppManifest,
    assignments: Sequence[Assignment],
    unplaced: Sequence[Unplaced],
    nodes: Mapping[str, NodeRecord],
    *,
    now: float,
    retiring: Sequence[Retiring] = (),
    autoscale: AutoscaleStatus | None = None,
    rollout: RolloutState | None = None,
    rows: RowMemo | None = None,
) -> AppStatus:
    sized = app.workload.resources.auto is not None
    hashes: dict[tuple[float, int], str] = {}
    specs = RolloutSpecs({app.name: app}, {app.name: rollout}) if rollout is not None else None
    replicas = []
    for a in sorted(assignments, key=lambda a: a.replica):
        limits = (a.cpu, a.memory_mb)
        if specs is not None:
            want = specs.hash_of(a)
        else:
            if limits not in hashes:
                hashes[limits] = spec_hash(replica_spec(app, a.cpu, a.memory_mb))
            want = hashes[limits]
        row = replica_status(a, want, nodes) if rows is None else rows.row(a, want, nodes)
        if sized:
            row = row.model_copy(update={"cpu": a.cpu, "memory_mb": a.memory_mb})
        replicas.append(row)
    running_names = {r.name for r in replicas if r.state == "running"}
    for old in sorted(retiring, key=lambda r: r.replica):
        state = reported_state(nodes, old.node, old.replica)
        if state == "running":
            running_names.add(old.replica)
        replicas.append(
            ReplicaStatus(
                name=old.replica,
                node=old.node,
                site=old.copy.site,
                state="retiring",
                message=f"old copy ({state or 'not reported'}); stops once the replacement "
                f"runs on {old.to_node} ({old.cause})",
            )
        )
    running = len(running_names)
    missing = sum(u.count for u in unplaced)
    desired = len(assignments) + missing if app.is_daemon else (app.replicas or 0)
    if running == desired and not missing:
        state = "healthy"
    elif missing or any(r.state in TROUBLED for r in replicas):
        state = "degraded"
    else:
        state = "progressing"
    listed, omitted = listed_rows(replicas)
    return AppStatus(
        app=app.name,
        state=state,
        mode="daemon" if app.is_daemon else "replicated",
        desired=desired,
        placed=len(assignments),
        running=running,
        replicas=listed,
        replicas_omitted=omitted,
        unplaced=list(unplaced),
        autoscale=autoscale,
        updated_at=now,
    )


def app_statuses(
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
    *,
    placements: Mapping[str, AppPlacement],
    verdicts: Mapping[str, Verdict],
    control: Control,
    now: float,
    rollouts: Mapping[str, RolloutState] | None = None,
    rows: RowMemo | None = None,
) -> dict[str, AppStatus]:
    """Every app's status after a pass (or a ``reported`` change), by app name; with the
    shell's ``rows``, unchanged replicas keep their row object."""
    if rows is not None:
        rows.new_round()
    per_app: dict[str, list[Assignment]] = {}
    for a in assignments:
        per_app.setdefault(a.app, []).append(a)
    statuses: dict[str, AppStatus] = {}
    for name, app in sorted(apps.items()):
        placement = placements.get(name)
        verdict = verdicts.get(name)
        autoscale = None
        if verdict is not None and app.autoscale is not None:
            autoscale = status_of(app, verdict, control.autoscale.get(name))
        statuses[name] = app_status(
            app,
            per_app.get(name, []),
            list(placement.unplaced) if placement is not None else [],
            nodes,
            now=now,
            retiring=[r for r in control.retiring if r.app == name],
            autoscale=autoscale,
            rollout=(rollouts or {}).get(name),
            rows=rows,
        )
    return statuses


def fleet_summary(
    nodes: Mapping[str, NodeRecord],
    statuses: Mapping[str, AppStatus],
    *,
    now: float,
    noncompliant: Mapping[str, list[str]] | None = None,
) -> FleetSummary:
    """Counts for dashboards; ``noncompliant`` (from :mod:`.compliance`) by node."""
    noncompliant = noncompliant or {}
    listed = dict(list(noncompliant.items())[:MAX_LISTED])
    states = [r.state for r in nodes.values()]
    return FleetSummary(
        ts=now,
        nodes_total=len(states),
        nodes_online=states.count("online"),
        nodes_offline=states.count("offline") + states.count("unknown"),
        nodes_stale=states.count("stale"),
        nodes_cordoned=sum(1 for r in nodes.values() if r.cordoned),
        nodes_flapping=sum(1 for r in nodes.values() if r.flapping),
        apps_total=len(statuses),
        apps_healthy=sum(1 for s in statuses.values() if s.state == "healthy"),
        apps_degraded=sum(1 for s in statuses.values() if s.state == "degraded"),
        replicas_desired=sum(s.desired for s in statuses.values()),
        replicas_running=sum(s.running for s in statuses.values()),
        nodes_noncompliant=len(noncompliant),
        noncompliant=listed,
    )


def same_status(a: AppStatus | None, b: AppStatus) -> bool:
    """Equal but for the timestamp: no need to republish."""
    return a is not None and a.model_copy(update={"updated_at": 0}) == b.model_copy(
        update={"updated_at": 0}
    )
