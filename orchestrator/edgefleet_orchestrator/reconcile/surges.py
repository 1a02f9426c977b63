"""Make-before-break updates of replicated apps under a rollout, for the reconcile pass. Pure.

When a rollout releases a replica of a replicated app, its new-spec copy starts on another
node that qualifies and has room, and its old-spec copy keeps running where it was until
the new one is *done* (healthy for ``min_healthy_s``). Where no other node qualifies, the
replica is updated in place, and the rollout says so in its ``reasons``. A daemon's
replica cannot run anywhere else: it is always updated in place.

Who calls it: :func:`~.fleet_pass.reconcile`, at three moments of a pass:

1. :func:`settle`, first: a rollout copy (the old copy of a replica updating
   make-before-break: a :class:`~edgefleet_orchestrator.scaling.moves.Retiring` of cause
   ``rollout``) stops once the rollout counts its replica done — not merely running, as a
   drain's copy does. When the replica failed, or the rollout reverts or ended before it
   was done, the update is *undone* instead: the replica is bound to its old copy's node
   again (which runs the previous spec, unchanged: it is not restarted) and the new copy
   is dropped. So a bad version never costs a replica that had a node to surge to.
2. :func:`requests`: the released replicas the passes have not decided yet; placement
   copies each to the best *other* node (``surge``; see
   :mod:`edgefleet_orchestrator.placement.pipeline`), keeping the old one charged.
3. :func:`decide`, after placement: each requested replica is recorded in the rollout as
   ``surged`` (to which node) or ``in_place`` (with placement's reasons). The record is
   stored with the pass, so a replica is decided once: an orchestrator restarted
   mid-rollout neither copies nor restarts a replica twice.

A replica whose copy completed stays on its new node; a revert after that changes its
spec where it now runs (in place), like every other replica that was done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.placement.model import AppPlacement, Assignment, Rejection
from edgefleet_orchestrator.rollout.state import RolloutState
from edgefleet_orchestrator.scaling.moves import Cause, Finished, Retiring


@dataclass(frozen=True, slots=True)
class Settled:
    retiring: tuple[Retiring, ...]
    assignments: list[Assignment]
    finished: list[Finished]


def settle(
    retiring: Sequence[Retiring],
    assignments: Sequence[Assignment],
    rollouts: Mapping[str, RolloutState],
) -> Settled:
    """Stop the rollout copies whose replica is done; undo the updates that failed or were
    overtaken by a revert or the rollout's end. Other copies are left to :mod:`.moves`."""
    current = list(assignments)
    index = {(a.app, a.replica): i for i, a in enumerate(current)}
    keep: list[Retiring] = []
    finished: list[Finished] = []
    for r in retiring:
        at = index.get((r.app, r.replica))
        rollout = rollouts.get(r.app)
        if r.cause != "rollout" or at is None:
            keep.append(r)  # not a rollout copy, or its replica is gone: moves.py decides
            continue
        primary = current[at]
        if rollout is None:
            why = f"its rollout is gone: {r.replica} stays on {primary.node}, the old copy stops"
            finished.append(Finished(r, why, completed=False))
        elif r.replica in rollout.done:
            why = (
                f"{r.replica} is healthy on revision {rollout.revision} on {primary.node}: "
                f"stopping its old copy on {r.node}"
            )
            finished.append(Finished(r, why, completed=True))
        elif r.replica in rollout.failed or rollout.phase == "reverting" or not rollout.active:
            current[at] = r.copy
            cause = rollout.failed.get(r.replica) or f"the rollout is {rollout.phase}"
            why = (
                f"{r.replica} keeps its old copy on {r.node}; the new copy on "
                f"{primary.node} stops ({cause})"
            )
            finished.append(Finished(r, why, completed=False))
        else:
            keep.append(r)
    return Settled(tuple(keep), current, finished)


@dataclass(frozen=True, slots=True)
class Requests:
    """What one pass asks and already knows. ``surge``: app -> replicas placement should
    copy elsewhere; ``continuing``: replicas whose copy a superseded rollout started
    (replica -> the node of its new copy); ``in_place``: replicas decided without asking
    placement — a daemon's; one a drain or rebalancing is moving already; one a superseded
    rollout had already given its spec (``first``): its running copy is on neither the
    new rollout's start spec nor its target, so it is no old copy to keep."""

    surge: dict[str, frozenset[str]] = field(default_factory=dict)
    continuing: dict[str, dict[str, str]] = field(default_factory=dict)
    in_place: dict[str, frozenset[str]] = field(default_factory=dict)


def requests(
    apps: Mapping[str, AppManifest],
    rollouts: Mapping[str, RolloutState],
    assignments: Sequence[Assignment],
    retiring: Sequence[Retiring],
    leaving: Mapping[str, Mapping[str, Rejection]],
) -> Requests:
    where = {(a.app, a.replica): a.node for a in assignments}
    moving = {(r.app, r.replica): r.cause for r in retiring}
    out = Requests()
    for name, rollout in sorted(rollouts.items()):
        app = apps.get(name)
        if app is None or not rollout.active or not rollout.splits:
            continue
        surge: set[str] = set()
        continuing: dict[str, str] = {}
        in_place: set[str] = set()
        for replica in sorted(rollout.released):
            node = where.get((name, replica))
            if node is None or not rollout.undecided(replica):
                continue
            cause = moving.get((name, replica))
            if cause == "rollout":
                continuing[replica] = node
            elif (
                app.is_daemon
                or cause is not None
                or replica in leaving.get(name, {})
                or replica in rollout.first
            ):
                in_place.add(replica)
            else:
                surge.add(replica)
        if surge:
            out.surge[name] = frozenset(surge)
        if continuing:
            out.continuing[name] = continuing
        if in_place:
            out.in_place[name] = frozenset(in_place)
    return out


def decide(
    rollouts: Mapping[str, RolloutState],
    asked: Requests,
    placements: Mapping[str, AppPlacement],
    now: float,
) -> dict[str, RolloutState]:
    """The rollouts that recorded a decision in this pass, by app."""
    changed: dict[str, RolloutState] = {}
    for name in sorted({*asked.surge, *asked.continuing, *asked.in_place}):
        rollout = rollouts[name]
        placement = placements.get(name)
        surged = {**rollout.surged, **asked.continuing.get(name, {})}
        in_place = set(rollout.in_place) | asked.in_place.get(name, frozenset())
        stuck: dict[str, tuple[str, ...]] = {}
        for replica in sorted(asked.surge.get(name, frozenset())):
            move = placement.moves.get(replica) if placement is not None else None
            if move is not None:
                surged[replica] = move[1]
                continue
            in_place.add(replica)
            stuck[replica] = placement.stuck.get(replica, ()) if placement is not None else ()
        nxt = replace(rollout, surged=surged, in_place=frozenset(in_place))
        if stuck:
            reasons = "; ".join(next(iter(stuck.values()))) or "no other node"
            nxt = nxt.with_reason(
                f"updating {', '.join(stuck)} in place: no other node can take a "
                f"make-before-break copy ({reasons})",
                now,
            )
        changed[name] = nxt
    return changed


def with_rollout_causes(
    causes: Mapping[str, Mapping[str, Cause]], asked: Requests
) -> dict[str, dict[str, Cause]]:
    """``causes`` plus the replicas placement was asked to copy (for start_retiring)."""
    merged = {app: dict(replicas) for app, replicas in causes.items()}
    for app, replicas in asked.surge.items():
        for replica in replicas:
            merged.setdefault(app, {})[replica] = "rollout"
    return merged
