"""One placement pass: from an app, the fleet and the current assignments to the app's new
set of assignments, in named buckets (kept / placed / stopped / moved) with every reason.

Called by the reconcile loop on every pass (:func:`place_all` for the whole fleet, or
:func:`place_app` for one app). Pure: plain values in, a new :class:`AppPlacement` out; the
only randomness is the ``seed`` of the tie-break, so a pass is reproducible.

The rules, in the order a pass applies them:

1. **Keep first.** A running replica stays on its node unless the node is gone (missing
   from ``nodes`` and not reported offline by the caller), lost beyond the app's disconnect
   grace (and ``disconnect.replace`` is on), fails an evicting filter
   (see :mod:`.filters`), holds more than ``max_per_node`` of the app, or cannot fit the
   replica's grown resources. Nothing is ever moved to improve a score.
2. **Scale down** stops the highest indexes (names ``<app>-<i>`` keep i in 0..N-1); **scale
   up** fills the lowest free indexes; a replica that had to leave is placed again under its
   own name (it *moved*) or, if nothing fits, stopped and counted as unplaced.
3. **Daemon** apps get one replica on each node that passes the static filters, named after
   the node; a matching node short of resources is counted as unplaced, with its reason.
   A daemon replica stays in the document of a node lost beyond its grace (it cannot run
   anywhere else, so removing it would only restart it when the node returns).
4. **Resources** are charged as the pass goes (capacity minus every assignment on the node,
   other apps' included), so one pass never overcommits a node. Apps sized by the
   orchestrator (``resources.auto``) keep each replica's own size, or the new one asked for
   in ``sizes`` when it fits the node; new replicas start at the manifest's resources.
5. **Leaving** replicas (``leaving``: drain, rebalancing) are placed elsewhere before any
   new replica, so a move wins over a scale-up; one that fits nowhere else (or whose best
   node is its own) stays where it runs, and a stuck one is reported with its reasons in
   ``stuck`` — a voluntary move never stops a replica.
6. **Surging** replicas (``surge``: a rollout updating make-before-break) keep their node,
   charged, while a copy under the same name is bound to the best *other* node, after
   every other replica is placed (a surge is optional; a scale-up is not). The old copy
   is the caller's to keep (:mod:`edgefleet_orchestrator.scaling.moves`); one that fits
   nowhere else stays bound where it runs (the caller updates it in place), in ``stuck``.

Cost: static filters run once per node and constraint set (apps with equal constraints share
them within a fleet pass); node scores live in a :class:`~.score_book.ScoreBook` shared by the
apps with the same score signature, and only the nodes a placement charged are rescored
before the next app ranks; each app reads its best nodes lazily (:mod:`.ranking`), and each
placement is O(log nodes). A pass is about O(signatures x nodes + changes + replicas x log
nodes), no longer apps x nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from edgefleet_protocol import Unplaced, host_ports
from edgefleet_protocol.manifest import AppManifest, replica_index, replica_name

from edgefleet_orchestrator.placement.filters import (
    DYNAMIC_FILTERS,
    LOST,
    STATIC_FILTERS,
    FilterContext,
    active,
    first_rejection,
    millicores,
)
from edgefleet_orchestrator.placement.memo import PlacementMemo, pass_key
from edgefleet_orchestrator.placement.model import (
    AppPlacement,
    Assignment,
    NodeView,
    Rejection,
    Size,
)
from edgefleet_orchestrator.placement.pass_inputs import Caches, Moves, Presence, Usage
from edgefleet_orchestrator.placement.ranking import Ranker
from edgefleet_orchestrator.placement.score_book import ScoreBook
from edgefleet_orchestrator.placement.state import PassState, StaticCache


def place_app(
    app: AppManifest,
    *,
    nodes: Sequence[NodeView],
    assignments: Sequence[Assignment],
    seed: int = 0,
    lost_nodes: frozenset[str] = frozenset(),
    offline_for_s: Mapping[str, float] | None = None,
    sizes: Mapping[str, Size] | None = None,
    leaving: Mapping[str, Rejection] | None = None,
    surge: frozenset[str] = frozenset(),
) -> AppPlacement:
    """Place one app. ``assignments`` are all current assignments fleet-wide: other apps'
    count against node resources, this app's are the replicas to keep if they may stay.

    A node is lost for this app if it is in ``lost_nodes`` or has been offline for at least
    ``app.disconnect.grace_s`` according to ``offline_for_s`` (seconds per node). A node
    missing from ``nodes`` counts as gone at once, unless ``offline_for_s`` or
    ``lost_nodes`` names it: then its replicas wait out the grace like an offline node's.

    ``sizes`` (replica -> :class:`Size`) and ``leaving`` (replica -> why it should move)
    are this app's, and so is ``surge``; see rules 4 to 6 of the module docstring.
    """
    by_name = _index_nodes(nodes)
    used_cpu: dict[str, int] = {}
    used_memory: dict[str, int] = {}
    mine: list[Assignment] = []
    for a in assignments:
        if a.app == app.name:
            mine.append(a)
        elif a.node in by_name:
            used_cpu[a.node] = used_cpu.get(a.node, 0) + millicores(a.cpu)
            used_memory[a.node] = used_memory.get(a.node, 0) + a.memory_mb
    usage = Usage(used_cpu, used_memory, {}, [])  # other apps' ports: place_all knows them
    presence = Presence.of(app, lost_nodes, offline_for_s)
    moves = Moves(sizes or {}, leaving or {}, surge)
    caches = Caches(StaticCache(), ScoreBook(usage.changed))
    return _place(app, by_name, mine, usage, seed, presence, caches, moves)


def place_all(
    apps: Iterable[AppManifest],
    nodes: Sequence[NodeView],
    assignments: Sequence[Assignment],
    seed: int = 0,
    lost_nodes: frozenset[str] = frozenset(),
    offline_for_s: Mapping[str, float] | None = None,
    sizes: Mapping[str, Mapping[str, Size]] | None = None,
    leaving: Mapping[str, Mapping[str, Rejection]] | None = None,
    reserved: Sequence[Assignment] = (),
    memo: PlacementMemo | None = None,
    surge: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, AppPlacement]:
    """Place every app, in name order, each seeing the resources the ones before it took.

    Assignments of apps not in ``apps`` keep counting against their nodes (removing a
    deleted app's replicas is the caller's decision, not placement's), and so do
    ``reserved`` ones (old copies of moving replicas, which run until their replacement
    does). ``sizes``, ``leaving`` and ``surge`` are per app (see :func:`place_app`).

    With a ``memo``, a pass whose inputs equal the previous pass's returns that pass's
    result without placing anything (:mod:`.memo`): the same answer, at the cost of a
    comparison.
    """
    ordered = sorted(apps, key=lambda a: a.name)
    names = [a.name for a in ordered]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"place_all got the same app twice: {', '.join(dupes)}")
    by_name = _index_nodes(nodes)
    key = None
    if memo is not None:
        key = pass_key(
            ordered,
            nodes,
            assignments,
            seed=seed,
            lost_nodes=lost_nodes,
            offline_for_s=offline_for_s,
            sizes=sizes,
            leaving=leaving,
            reserved=reserved,
            surge=surge,
        )
        found = memo.recall(key)
        if found is not None:
            return found
    usage = Usage({}, {}, {}, [])
    ports = {app.name: host_ports(app.workload) for app in ordered}
    per_app: dict[str, list[Assignment]] = {}
    for a in assignments:
        per_app.setdefault(a.app, []).append(a)
        if a.node in by_name:
            usage.add(a.node, millicores(a.cpu), a.memory_mb)
    for a in [*assignments, *reserved]:
        if a.node in by_name:
            usage.hold(a.node, ports.get(a.app, frozenset()), a.app)
    for a in reserved:
        if a.node in by_name:
            usage.add(a.node, millicores(a.cpu), a.memory_mb)
    results: dict[str, AppPlacement] = {}
    caches = Caches(StaticCache(), ScoreBook(usage.changed))
    for app in ordered:
        mine = per_app.get(app.name, [])
        for a in mine:
            if a.node in by_name:
                usage.add(a.node, -millicores(a.cpu), -a.memory_mb)
                usage.release(a.node, app.name)
        for a in reserved:  # an old copy still running keeps its ports until it stops
            if a.app == app.name and a.node in by_name:
                usage.hold(a.node, ports[app.name], app.name)
        # The pass charges the app's new set into ``usage``, ready for the next app.
        presence = Presence.of(app, lost_nodes, offline_for_s)
        moves = Moves(
            (sizes or {}).get(app.name, {}),
            (leaving or {}).get(app.name, {}),
            (surge or {}).get(app.name, frozenset()),
        )
        results[app.name] = _place(app, by_name, mine, usage, seed, presence, caches, moves)
    if memo is not None and key is not None:
        memo.remember(key, results)
    return results


def _index_nodes(nodes: Sequence[NodeView]) -> dict[str, NodeView]:
    by_name = {n.node: n for n in nodes}
    if len(by_name) != len(nodes):
        raise ValueError("placement got two views of the same node")
    return by_name


def _place(
    app: AppManifest,
    by_name: Mapping[str, NodeView],
    mine: Sequence[Assignment],
    usage: Usage,
    seed: int,
    presence: Presence,
    caches: Caches,
    moves: Moves,
) -> AppPlacement:
    lost = presence.lost
    ctx = FilterContext.for_app(
        app,
        lost=lost,
        used_cpu_m=usage.cpu_m,
        used_memory_mb=usage.memory_mb,
        ports_on=usage.ports,
        changed=usage.changed,
    )
    static = active(STATIC_FILTERS, app)
    state = PassState(
        app=app,
        nodes=by_name,
        ctx=ctx,
        static=static,
        evicting=tuple(f for f in static if f.evicts),
        dynamic=active(DYNAMIC_FILTERS, app),
        static_results=caches.static.results_for(app, lost),
        absent_but_known=presence.known,
        sizes=moves.sizes,
    )
    if app.is_daemon:
        return _place_daemon(state, mine)
    return _place_replicated(state, mine, seed, moves, caches.scores)


def _place_replicated(
    state: PassState,
    mine: Sequence[Assignment],
    seed: int,
    asked: Moves,
    scores: ScoreBook,
) -> AppPlacement:
    app = state.app
    leaving = asked.leaving
    desired = app.replicas or 0
    stopped: list[str] = []
    candidates: dict[int, list[Assignment]] = {}
    for a in sorted(mine, key=lambda a: (a.replica, a.node)):
        index = replica_index(app.name, a.replica)
        if index is None or index >= desired:
            stopped.append(a.replica)  # scaled down, or a name from another mode
        else:
            candidates.setdefault(index, []).append(a)

    kept: list[str] = []
    left: dict[int, Assignment] = {}  # index -> the copy that had to leave its node
    asked_to_leave: list[Assignment] = []
    surging: list[Assignment] = []
    for index in sorted(candidates):
        copies = candidates[index]  # more than one only if a caller duplicated a name
        staying = next((a for a in copies if state.why_not_keep(a) is None), None)
        if staying is None:
            left[index] = copies[0]
            continue
        stopped.extend(a.replica for a in copies if a is not staying)
        if staying.replica in leaving:
            asked_to_leave.append(staying)  # placed once everything else that stays is in
            continue
        if staying.replica in asked.surge:
            surging.append(staying)  # kept (its old copy runs on), copied after the rest
        state.keep(staying)
        kept.append(staying.replica)

    placed: list[str] = []
    moves: dict[str, tuple[str, str]] = {}
    unplaced: list[Unplaced] = []
    stuck: dict[str, tuple[str, ...]] = {}
    leaving_names = {a.replica for a in asked_to_leave}
    missing = [
        i
        for i in range(desired)
        if (name := replica_name(app.name, index=i)) not in state.taken
        and name not in leaving_names
    ]
    if asked_to_leave or missing or surging:
        ranker = Ranker(state, seed, scores)
        for a in asked_to_leave:
            node = ranker.best()
            if node is None or node.node == a.node:
                if node is None:
                    stuck[a.replica] = tuple(state.unplaced_reasons(sorted(state.nodes)))
                state.keep(a)
                kept.append(a.replica)
                if node is not None:
                    ranker.took(node)
                continue
            state.take(a.replica, node, like=a)
            ranker.took(node)
            moves[a.replica] = (a.node, node.node)
        for position, index in enumerate(missing):
            node = ranker.best()
            if node is None:
                rest = missing[position:]
                stopped.extend(replica_name(app.name, index=i) for i in rest if i in left)
                reasons = state.unplaced_reasons(sorted(state.nodes))
                unplaced.append(Unplaced(count=len(rest), reasons=reasons))
                break
            name = replica_name(app.name, index=index)
            state.take(name, node, like=left.get(index))
            ranker.took(node)
            if index in left:
                moves[name] = (left[index].node, node.node)
            else:
                placed.append(name)
        for a in surging:
            node = ranker.best_except(a.node)
            if node is None:
                stuck[a.replica] = tuple(state.unplaced_reasons(sorted(state.nodes)))
                continue
            kept.remove(a.replica)
            state.take(a.replica, node, like=a)  # a.node stays charged: the old copy
            ranker.took(node)
            moves[a.replica] = (a.node, node.node)

    order = sorted(state.taken, key=lambda r: replica_index(app.name, r) or 0)
    return AppPlacement(
        app=app.name,
        desired=desired,
        assignments=tuple(state.taken[r] for r in order),
        kept=tuple(kept),
        placed=tuple(placed),
        stopped=tuple(sorted(stopped)),
        moved=tuple(sorted(moves, key=lambda r: replica_index(app.name, r) or 0)),
        moves=MappingProxyType(moves),
        unplaced=tuple(unplaced),
        rejections=MappingProxyType(state.rejections()),
        stuck=MappingProxyType(stuck),
    )


def _place_daemon(state: PassState, mine: Sequence[Assignment]) -> AppPlacement:
    app = state.app
    stopped: list[str] = []
    kept: list[str] = []
    kept_on: set[str] = set()
    for a in sorted(mine, key=lambda a: (a.node, a.replica)):
        wrong_name = a.replica != replica_name(app.name, node=a.node)
        why = state.why_not_keep(a)
        if why == LOST:
            # A daemon replica cannot run anywhere else, so grace running out moves nothing:
            # removing it from the node's document would only make a returning node stop
            # a healthy process and start it again a moment later.
            why = None
        if wrong_name or a.node in kept_on or why is not None:
            stopped.append(a.replica)
            continue
        state.keep(a)
        kept.append(a.replica)
        kept_on.add(a.node)

    placed: list[str] = []
    short: list[str] = []
    for name in sorted(state.nodes):
        node = state.nodes[name]
        if name in kept_on or state.static_rejection(node) is not None:
            continue
        rejection = first_rejection(node, state.ctx, state.dynamic)
        if rejection is not None:
            state.dynamic_rejections[name] = rejection
            short.append(name)
            continue
        replica = replica_name(app.name, node=name)
        state.take(replica, node)
        placed.append(replica)

    unplaced = (Unplaced(count=len(short), reasons=state.unplaced_reasons(short)),) if short else ()
    assignments = sorted(state.taken.values(), key=lambda a: a.node)
    return AppPlacement(
        app=app.name,
        desired=len(assignments) + len(short),
        assignments=tuple(assignments),
        kept=tuple(kept),
        placed=tuple(placed),
        stopped=tuple(sorted(stopped)),
        unplaced=unplaced,
        rejections=MappingProxyType(state.rejections()),
    )
