"""Make-before-break moves: a replica asked to leave its node (drain, rebalancing) keeps
running there, as a *retiring* copy, until its replacement runs on the new node. A rollout
updating a replica make-before-break uses the same copy (cause ``rollout``), but its end
is the rollout's verdict, not "running": see :mod:`edgefleet_orchestrator.reconcile.surges`.

Who calls it: the reconcile pass. Pure. A move has three moments:

1. The pass asks placement to move the replica (``leaving``); placement binds the
   replica's name to a new node (the assignment moves at once, so the new node's desired
   document starts it).
2. :func:`start_retiring` keeps the old copy in the old node's desired document (same
   name, same limits) if it was running there. A copy that was not running has nothing
   to keep serving, so it is simply dropped (break-before-make costs nothing then).
3. :func:`finish_retiring`, at the start of every later pass, drops the copy once the
   replacement is reported running the desired spec — the old node's document then loses
   it and its agent stops it. A copy is also dropped when its replica no longer exists,
   moved back onto the copy's node, or the old node stopped being online (nothing runs
   there to keep).

So the count of running replicas of an app never dips because of a voluntary move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import SpecCache, reported_state, runs
from edgefleet_orchestrator.placement.model import AppPlacement, Assignment

Cause = Literal["drain", "rebalance", "rollout"]


@dataclass(frozen=True, slots=True)
class Retiring:
    """The old copy of a moving replica: still running on ``copy.node`` until the
    replacement runs on ``to_node``."""

    copy: Assignment
    to_node: str
    cause: Cause
    since: float

    @property
    def app(self) -> str:
        return self.copy.app

    @property
    def replica(self) -> str:
        return self.copy.replica

    @property
    def node(self) -> str:
        return self.copy.node


@dataclass(frozen=True, slots=True)
class Finished:
    """A retiring copy the pass lets go of, and why (for the audit trail)."""

    retiring: Retiring
    reason: str
    completed: bool  # the replacement runs (as opposed to: the move was overtaken)


def finish_retiring(
    retiring: Sequence[Retiring],
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
    specs: SpecCache,
) -> tuple[tuple[Retiring, ...], list[Finished]]:
    """Split ``retiring`` into the copies still needed and the ones to stop now."""
    current = {(a.app, a.replica): a for a in assignments}
    keep: list[Retiring] = []
    done: list[Finished] = []
    for r in retiring:
        primary = current.get((r.app, r.replica))
        if primary is None:
            done.append(Finished(r, f"{r.replica} no longer exists", completed=False))
        elif primary.node == r.node:
            done.append(Finished(r, f"{r.replica} is assigned to {r.node} again", False))
        elif r.cause != "rollout" and runs(nodes, primary.node, r.replica, specs.hash_of(primary)):
            why = f"{r.replica} runs on {primary.node}: stopping its old copy on {r.node}"
            done.append(Finished(r, why, completed=True))
        elif reported_state(nodes, r.node, r.replica) is None:
            why = f"{r.node} no longer reports {r.replica} (node not online): nothing to keep"
            done.append(Finished(r, why, completed=False))
        else:
            keep.append(r if primary.node == r.to_node else _retarget(r, primary.node))
    return tuple(keep), done


def start_retiring(
    placements: Mapping[str, AppPlacement],
    causes: Mapping[str, Mapping[str, Cause]],
    before: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
    *,
    now: float,
) -> list[Retiring]:
    """Old copies to keep for the replicas this pass moved because they were asked to
    leave (``causes``: app -> replica -> why), where the old copy was running."""
    started: list[Retiring] = []
    if not any(placements[app].moves for app in causes if app in placements):
        return started  # nothing was asked to leave and moved: no map of every assignment
    was = {(a.app, a.replica): a for a in before}
    for app, placement in sorted(placements.items()):
        asked = causes.get(app, {})
        for replica, (old_node, new_node) in sorted(placement.moves.items()):
            cause = asked.get(replica)
            old = was.get((app, replica))
            if cause is None or old is None or old.node != old_node:
                continue
            if runs(nodes, old_node, replica):
                started.append(Retiring(old, new_node, cause, now))
    return started


def _retarget(r: Retiring, node: str) -> Retiring:
    """The replacement itself moved on (its new node was lost): follow it."""
    return Retiring(r.copy, node, r.cause, r.since)
