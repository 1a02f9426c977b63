"""Draining a node: which of its replicas to move now, and how far the drain has got.

Who calls it: the reconcile pass, on every pass while any drain is active. Pure. The
``drain`` command cordons the node and records a :class:`DrainRequest`; from then on:

* :func:`plan_drains` asks placement to move replicas off the node (``leaving``), make-
  before-break (see :mod:`.moves`): the replacement starts first, the old copy stops once
  it runs. Per app at most ``max_unavailable`` replicas are *disrupted* at a time — being
  moved, or not running at all — so a drain never takes an app below
  ``replicas - max_unavailable`` running; an app that is already short waits (and says
  why). A replica that is not running on the draining node has nothing to keep up, so it
  moves at once, outside the budget.
* A replica that fits nowhere else stays where it runs: placement reports it ``stuck``
  with every node's reason, and :func:`drain_progress` shows it. The drain carries on by
  itself when room appears (a node joins, an app shrinks).
* Daemon replicas belong to their node (one per matching node) and stay; they do not
  count against "drained".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgefleet_protocol.manifest import AppManifest, replica_index

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import reported_state
from edgefleet_orchestrator.placement.model import AppPlacement, Assignment, Rejection
from edgefleet_orchestrator.scaling.moves import Retiring

DrainState = Literal["draining", "drained", "stuck"]


@dataclass(frozen=True, slots=True)
class DrainRequest:
    """An operator's ``drain``: ``max_unavailable`` overrides each app's own budget."""

    node: str
    started_at: float
    max_unavailable: int | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A replica on a draining node that is not asked to move yet, and why."""

    node: str
    app: str
    replica: str
    reason: str


@dataclass(frozen=True, slots=True)
class DrainPlan:
    leaving: dict[str, dict[str, Rejection]]
    waiting: list[Waiting]


def plan_drains(
    drains: Mapping[str, DrainRequest],
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    retiring: Sequence[Retiring],
    nodes: Mapping[str, NodeRecord],
) -> DrainPlan:
    """The replicas to ask to leave the draining nodes in this pass."""
    leaving: dict[str, dict[str, Rejection]] = {}
    waiting: list[Waiting] = []
    if not drains:
        return DrainPlan(leaving, waiting)
    on_drained = [
        a for a in assignments if a.node in drains and a.app in apps and not apps[a.app].is_daemon
    ]
    moving = {(r.app, r.replica) for r in retiring}
    disrupted = _disrupted(assignments, retiring, nodes)
    for a in sorted(on_drained, key=lambda a: (a.app, replica_index(a.app, a.replica) or 0)):
        app = apps[a.app]
        budget = _budget(app, a.app, on_drained, drains)
        why = Rejection("drain", f"node {a.node} is draining")
        if (a.app, a.replica) in moving:
            reason = "its previous move has not finished yet"
            waiting.append(Waiting(a.node, a.app, a.replica, reason))
        elif reported_state(nodes, a.node, a.replica) != "running":
            leaving.setdefault(a.app, {})[a.replica] = why  # nothing running to keep up
        elif len(disrupted.setdefault(a.app, set())) < budget:
            leaving.setdefault(a.app, {})[a.replica] = why
            disrupted[a.app].add(a.replica)
        else:
            busy = ", ".join(sorted(disrupted[a.app], key=lambda r: replica_index(a.app, r) or 0))
            reason = f"max_unavailable {budget} reached for app {a.app} (disrupted: {busy})"
            waiting.append(Waiting(a.node, a.app, a.replica, reason))
    return DrainPlan(leaving, waiting)


def _budget(
    app: AppManifest,
    name: str,
    on_drained: Sequence[Assignment],
    drains: Mapping[str, DrainRequest],
) -> int:
    """The app's budget: the tightest of the drains that hold one of its replicas."""
    budgets = [
        request.max_unavailable or app.disruption.max_unavailable
        for node, request in drains.items()
        if any(a.app == name and a.node == node for a in on_drained)
    ]
    return min(budgets) if budgets else app.disruption.max_unavailable


def _disrupted(
    assignments: Sequence[Assignment],
    retiring: Sequence[Retiring],
    nodes: Mapping[str, NodeRecord],
) -> dict[str, set[str]]:
    """Per app, the replicas being moved or running nowhere."""
    old_copy_runs = {
        (r.app, r.replica)
        for r in retiring
        if reported_state(nodes, r.node, r.replica) == "running"
    }
    out: dict[str, set[str]] = {}
    for r in retiring:
        out.setdefault(r.app, set()).add(r.replica)
    for a in assignments:
        if (a.app, a.replica) in old_copy_runs:
            continue
        if reported_state(nodes, a.node, a.replica) != "running":
            out.setdefault(a.app, set()).add(a.replica)
    return out


def drain_progress(
    request: DrainRequest,
    *,
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    retiring: Sequence[Retiring],
    placements: Mapping[str, AppPlacement],
    waiting: Sequence[Waiting],
    nodes: Mapping[str, NodeRecord],
) -> dict[str, Any]:
    """Where a drain stands, as the JSON the ``drain`` and ``node`` commands answer.

    ``state`` is ``drained`` when no replica of a replicated app is left on the node,
    ``draining`` while a move of one of its apps is under way, and ``stuck`` when replicas
    remain and nothing moves (each is listed under ``stuck`` or ``waiting`` with its
    reason).
    """
    node = request.node
    here = [a for a in assignments if a.node == node and a.app in apps]
    daemons = sorted(a.replica for a in here if apps[a.app].is_daemon)
    staying = [a for a in here if not apps[a.app].is_daemon]
    moving = [
        {
            "app": r.app,
            "replica": r.replica,
            "to": r.to_node,
            "state": reported_state(nodes, r.to_node, r.replica) or "pending",
        }
        for r in sorted(retiring, key=lambda r: (r.app, r.replica))
        if r.node == node
    ]
    stuck = [
        {"app": a.app, "replica": a.replica, "reasons": list(placements[a.app].stuck[a.replica])}
        for a in sorted(staying, key=lambda a: (a.app, a.replica))
        if a.app in placements and a.replica in placements[a.app].stuck
    ]
    held = [
        {"app": w.app, "replica": w.replica, "reason": w.reason}
        for w in waiting
        if w.node == node and any(a.replica == w.replica and a.app == w.app for a in staying)
    ]
    remaining = len(staying) + len(moving)
    # A replica waiting for its app's budget is progressing if that app is moving
    # somewhere (another draining node, a rebalance) or one of its replicas elsewhere is
    # on its way up: its turn will come.
    apps_left = {a.app for a in staying}
    progressing = (
        bool(moving)
        or any(r.app in apps_left for r in retiring)
        or any(a.app in apps_left and a.node != node and _starting(nodes, a) for a in assignments)
    )
    state: DrainState = "drained" if remaining == 0 else "draining" if progressing else "stuck"
    return {
        "node": node,
        "state": state,
        "started_at": request.started_at,
        "max_unavailable": request.max_unavailable,
        "remaining": remaining,
        "moving": moving,
        "waiting": held,
        "stuck": stuck,
        "daemons": daemons,
    }


_ON_THE_WAY = frozenset({"pending", "pulling", "starting"})


def _starting(nodes: Mapping[str, NodeRecord], a: Assignment) -> bool:
    """Whether ``a`` is on its way up on an online node (not reported yet counts)."""
    record = nodes.get(a.node)
    if record is None or record.state != "online":
        return False
    state = reported_state(nodes, a.node, a.replica)
    return state is None or state in _ON_THE_WAY


def milestones(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, DrainState, str]]:
    """(node, state, sentence) for every drain whose state changed in a pass: the
    audit trail's account of a drain (started, drained, or stuck and why)."""
    out: list[tuple[str, DrainState, str]] = []
    for node, progress in sorted(after.items()):
        state: DrainState = progress["state"]
        if before.get(node, {}).get("state") == state:
            continue
        if state == "drained":
            text = f"node {node} is drained: no replica of a replicated app is left on it"
        elif state == "stuck":
            why = [f"{s['replica']} stuck: {'; '.join(s['reasons'])}" for s in progress["stuck"]]
            why += [f"{w['replica']} waits: {w['reason']}" for w in progress["waiting"]]
            text = f"drain of node {node} cannot go on: " + (" | ".join(why) or "nothing moves")
        else:
            text = f"draining node {node}: {progress['remaining']} replica(s) left on it"
        out.append((node, state, text))
    return out
