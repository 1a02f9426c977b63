"""Rebalancing: when nodes join or come back, move a few replicas of spread apps onto them.

Who calls it: the reconcile pass, while the shell says a node joined or returned since
the fleet was last balanced. Pure. Placement never moves a running replica to improve a
score (stability first); this module is the one deliberate exception, and it is bounded:

* only apps that spread (``strategy: spread``, or an explicit ``spread``), run every
  replica, have nothing moving already, and did not opt out (``disruption.rebalance:
  false``);
* only when the app is uneven by two or more replicas between its fullest and emptiest
  spread domain (node, or site with ``spread: site``) among the nodes it may run on, and
  the emptier domain has room for one more;
* or, for apps spread per node whose counts are already even, when one of its replicas
  sits on a node at least :data:`LOAD_GAP` more allocated (the mean of its cpu and
  memory shares, as placement's least-allocated score ranks them) than an eligible node
  with room and no more replicas of the app, even
  after the move: rebalancing evens load, not only counts, so a node that joins empty
  takes work off the busiest nodes and not only off apps with a replica too many. The
  move must leave the target less loaded than the source was, so nothing swings back;
* one replica per app per pass (the fullest domain's highest index, or the busiest
  node's), at most ``budget`` in all — the shell's churn budget of K moves per interval;
* make-before-break, like a drain (:mod:`.moves`).

Placement then puts the leaving replica on the best node, which the spread rank makes
the emptiest domain (and, among equally empty nodes, the least allocated one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edgefleet_protocol.manifest import AppManifest, replica_index

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import runs
from edgefleet_orchestrator.placement.filters import (
    STATIC_FILTERS,
    FilterContext,
    active,
    first_rejection,
    millicores,
)
from edgefleet_orchestrator.placement.model import Assignment, NodeView, Rejection
from edgefleet_orchestrator.scaling.moves import Retiring

LOAD_GAP = 0.25
"""How much more allocated (the mean of the node's cpu and memory shares) a
replica's node must be than the target, after the move, for rebalancing to move it."""


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """``leaving``: app -> replica -> why; ``reasons``: one sentence per move;
    ``settled``: nothing is left to even out (so the shell may stop asking)."""

    leaving: dict[str, dict[str, Rejection]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    settled: bool = True


def plan_rebalance(
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    views: Sequence[NodeView],
    *,
    retiring: Sequence[Retiring],
    nodes: Mapping[str, NodeRecord],
    budget: int,
    busy: frozenset[str] = frozenset(),
) -> RebalancePlan:
    """Up to ``budget`` moves that even out uneven spread apps (module docstring).

    ``busy`` apps (a drain moves them this pass) are left alone.
    """
    free_cpu_m, free_mb = _free(views, assignments, retiring)
    moving = {r.app for r in retiring} | set(busy)
    plan = RebalancePlan()
    settled = True
    for name in sorted(apps):
        app = apps[name]
        spread = app.placement.effective_spread
        if app.is_daemon or spread is None or not app.disruption.rebalance:
            continue
        mine = [a for a in assignments if a.app == name]
        if not mine:
            continue
        eligible = _eligible(app, views)
        domain_of = {v.node: (v.node if spread == "node" else v.site) for v in eligible}
        counts = {d: 0 for d in domain_of.values()}
        on_eligible = [a for a in mine if a.node in domain_of]
        for a in on_eligible:
            counts[domain_of[a.node]] += 1
        if len(counts) < 2:
            continue
        fullest = max(sorted(counts), key=lambda d: counts[d])
        room = _domains_with_room(app, eligible, domain_of, free_cpu_m, free_mb)
        emptier = sorted(
            (d for d in counts if counts[d] <= counts[fullest] - 2 and d in room),
            key=lambda d: (counts[d], d),
        )
        source: Assignment | None = None
        if emptier:
            source = max(
                (a for a in on_eligible if domain_of[a.node] == fullest),
                key=lambda a: replica_index(name, a.replica) or 0,
            )
            target = emptier[0]
            why = (
                f"rebalancing {name}: {fullest} runs {counts[fullest]} replicas, "
                f"{target} {counts[target]}"
            )
        elif spread == "node":
            found = _load_move(app, on_eligible, eligible, counts, room, views, free_cpu_m, free_mb)
            if found is not None:
                source, why = found
        if source is None:
            continue  # even, or the emptier domains are full: nothing a move can fix
        settled = False
        if name in moving or budget <= 0:
            continue
        if not all(runs(nodes, a.node, a.replica) for a in mine):
            continue  # not while any replica is down: a move would stack disruption
        plan.leaving.setdefault(name, {})[source.replica] = Rejection("rebalance", why)
        plan.reasons[f"{name}/{source.replica}"] = why
        budget -= 1
    return RebalancePlan(plan.leaving, plan.reasons, settled)


def _load_move(
    app: AppManifest,
    on_eligible: Sequence[Assignment],
    eligible: Sequence[NodeView],
    counts: Mapping[str, int],
    room: set[str],
    views: Sequence[NodeView],
    free_cpu_m: Mapping[str, int],
    free_mb: Mapping[str, int],
) -> tuple[Assignment, str] | None:
    """The replica of an even, node-spread app to move off its busiest node, if an
    eligible node with room and no more of its replicas would stay :data:`LOAD_GAP` less
    allocated than that node even with the replica on it."""
    by_name = {v.node: v for v in views}

    def share(node: str, extra_cpu_m: int = 0, extra_mb: int = 0) -> float:
        view = by_name[node]
        cap_cpu, cap_mb = millicores(view.cpu_cores), view.memory_mb
        used_cpu = cap_cpu - free_cpu_m.get(node, 0) + extra_cpu_m
        used_mb = cap_mb - free_mb.get(node, 0) + extra_mb
        # The mean of the cpu and memory shares: what placement's least-allocated score
        # ranks by, so placement agrees that the target is the better node.
        return (
            (used_cpu / cap_cpu if cap_cpu else 1.0) + (used_mb / cap_mb if cap_mb else 1.0)
        ) / 2

    need_cpu_m = millicores(app.workload.resources.cpu)
    need_mb = app.workload.resources.memory_mb
    busiest = max(
        on_eligible,
        key=lambda a: (share(a.node), replica_index(app.name, a.replica) or 0, a.node),
    )
    before = share(busiest.node)
    targets = sorted(
        (share(v.node, need_cpu_m, need_mb), v.node)
        for v in eligible
        if v.node in room and counts.get(v.node, 0) < counts.get(busiest.node, 0)
    )
    if not targets or targets[0][0] > before - LOAD_GAP:
        return None
    after, target = targets[0]
    why = (
        f"rebalancing {app.name}: {busiest.node} is {before:.0%} allocated, "
        f"{target} would be {after:.0%} with the replica"
    )
    return busiest, why


def _eligible(app: AppManifest, views: Sequence[NodeView]) -> list[NodeView]:
    """Nodes that could take a new replica of ``app`` by its fixed constraints."""
    ctx = FilterContext.for_app(app)
    static = active(STATIC_FILTERS, app)
    return [v for v in views if first_rejection(v, ctx, static) is None]


def _domains_with_room(
    app: AppManifest,
    eligible: Sequence[NodeView],
    domain_of: Mapping[str, str],
    free_cpu_m: Mapping[str, int],
    free_mb: Mapping[str, int],
) -> set[str]:
    need_cpu_m = millicores(app.workload.resources.cpu)
    need_mb = app.workload.resources.memory_mb
    return {
        domain_of[v.node]
        for v in eligible
        if free_cpu_m.get(v.node, 0) >= need_cpu_m and free_mb.get(v.node, 0) >= need_mb
    }


def _free(
    views: Sequence[NodeView], assignments: Sequence[Assignment], retiring: Sequence[Retiring]
) -> tuple[dict[str, int], dict[str, int]]:
    cpu = {v.node: millicores(v.cpu_cores) for v in views}
    memory = {v.node: v.memory_mb for v in views}
    for a in (*assignments, *(r.copy for r in retiring)):
        if a.node in cpu:
            cpu[a.node] -= millicores(a.cpu)
            memory[a.node] -= a.memory_mb
    return cpu, memory


class RebalanceGate:
    """When rebalancing runs, and with how many moves: the shell's side of the churn budget.

    Pure (``now`` is passed in); one instance lives in the service shell. Rebalancing is
    *wanted* from the pass that first sees a node online that the previous pass did not
    (joined, or back) until a pass finds nothing left to even out with no rebalance move
    in flight. The first pass only takes note of who is online: a restart is not a join.
    Moves are counted in a sliding window of ``interval_s``; when the budget runs out with
    work left, :meth:`due` says when to try again.
    """

    def __init__(self, max_moves: int, interval_s: float) -> None:
        self.max_moves = max_moves
        self.interval_s = interval_s
        self.wanted = False
        self._online: frozenset[str] | None = None
        self._moves: list[float] = []
        self._retry_at: float | None = None

    def budget(self, online: frozenset[str], now: float) -> tuple[bool, int]:
        """Before a pass: whether to rebalance in it, and how many moves it may make."""
        if self._online is not None and online - self._online:
            self.wanted = True  # a node joined or came back
        self._online = online
        self._moves = [t for t in self._moves if t > now - self.interval_s]
        left = max(0, self.max_moves - len(self._moves))
        return self.wanted and self.max_moves > 0, left

    def after(
        self, *, asked: bool, budget: int, started: int, settled: bool, in_flight: bool, now: float
    ) -> None:
        """After a pass that was ``asked`` to rebalance with ``budget`` moves and started
        ``started`` of them."""
        self._moves.extend([now] * started)
        if not asked:
            return
        if settled and not in_flight:
            self.wanted = False
        elif self._moves and budget - started <= 0:
            self._retry_at = min(self._moves) + self.interval_s

    def due(self, now: float) -> bool:
        """On the timer: whether the budget has room again for work left waiting."""
        if self._retry_at is None or now < self._retry_at:
            return False
        self._retry_at = None
        return True
