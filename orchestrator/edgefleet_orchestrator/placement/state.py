"""The working state of one app's placement pass, and the static-filter cache a fleet
pass shares between apps.

Owned by :mod:`.pipeline` (which creates one :class:`PassState` per app and pass) and read by
:mod:`.ranking`; nothing outside the placement package uses these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.placement.filters import (
    LOST,
    MAX_PER_NODE,
    RESOURCES,
    Filter,
    FilterContext,
    first_rejection,
    millicores,
)
from edgefleet_orchestrator.placement.model import (
    Assignment,
    NodeView,
    Rejection,
    Size,
    group_reasons,
)

NODE_GONE = Rejection("gone", "node gone")
NO_NODES = "no nodes in the fleet"


STATIC_FIELDS = {
    "sites",
    "selector",
    "selector_not",
    "regions",
    "max_latency_ms",
    "min_bandwidth_mbps",
    "sensors",
    "accelerators",
    "arch",
}


class StaticCache:
    """Static filter outcomes per node, shared by the apps of one pass that constrain
    nodes identically (most apps constrain little, so a fleet pass evaluates each node
    against a handful of distinct constraint sets instead of once per app)."""

    def __init__(self) -> None:
        self._by_signature: dict[_Signature, StaticResults] = {}

    def results_for(self, app: AppManifest, lost: frozenset[str]) -> StaticResults:
        constraints = app.placement.model_dump_json(include=STATIC_FIELDS)
        key = (app.workload.runtime, constraints, lost)
        found = self._by_signature.get(key)
        if found is None:
            found = self._by_signature[key] = StaticResults()
        return found


_Signature = tuple[str, str, frozenset[str]]


@dataclass(slots=True)
class StaticResults:
    """Static outcomes per node for one constraint signature, filled as nodes are asked
    about; ``feasible`` is the full list of passing nodes once some pass needed it."""

    by_node: dict[str, Rejection | None] = field(default_factory=dict)
    feasible: list[NodeView] | None = None
    # The refusals among ``by_node`` in node-name order, valid while ``by_node`` has
    # ``refusals_of`` entries (it only grows): read by every app's result, built once.
    refusals: dict[str, Rejection] = field(default_factory=dict)
    refusals_of: int = -1

    def sorted_refusals(self, nodes: Mapping[str, NodeView]) -> dict[str, Rejection]:
        if self.refusals_of != len(self.by_node):
            known = {n: r for n, r in self.by_node.items() if r is not None and n in nodes}
            self.refusals = dict(sorted(known.items()))
            self.refusals_of = len(self.by_node)
        return self.refusals


@dataclass(slots=True)
class PassState:
    """The working state of one app's pass: its filters, the running totals (in ``ctx``),
    the replicas taken so far and every rejection found. Mutated only by the pipeline and
    the ranker of that pass; a new one is made for every app and pass."""

    app: AppManifest
    nodes: Mapping[str, NodeView]
    ctx: FilterContext
    static: tuple[Filter, ...]
    evicting: tuple[Filter, ...]
    dynamic: tuple[Filter, ...]
    static_results: StaticResults = field(default_factory=StaticResults)
    dynamic_rejections: dict[str, Rejection] = field(default_factory=dict)
    site_counts: dict[str, int] = field(default_factory=dict)
    taken: dict[str, Assignment] = field(default_factory=dict)
    absent_but_known: frozenset[str] = frozenset()
    sizes: Mapping[str, Size] = field(default_factory=dict)

    @property
    def sized(self) -> bool:
        """Whether the orchestrator sizes this app's replicas one by one (``auto``): then
        a kept replica keeps its own size, not the manifest's."""
        return self.app.workload.resources.auto is not None

    def static_rejection(self, node: NodeView) -> Rejection | None:
        by_node = self.static_results.by_node
        name = node.node
        if name in by_node:
            return by_node[name]
        rejection = first_rejection(node, self.ctx, self.static)
        by_node[name] = rejection
        return rejection

    def feasible_nodes(self) -> list[NodeView]:
        """Every node that passes the static filters (computed once per signature)."""
        results = self.static_results
        if results.feasible is None:
            results.feasible = [n for n in self.nodes.values() if self.static_rejection(n) is None]
        return results.feasible

    def why_not_keep(self, a: Assignment) -> Rejection | None:
        """Why an existing replica must leave its node, or ``None`` if it may stay."""
        if a.node in self.ctx.lost and self.app.disconnect.replace:
            return LOST
        node = self.nodes.get(a.node)
        if node is None:
            # Unknown to this pass: wait if the caller accounts for it as offline (within
            # grace, or lost with replace off); otherwise it has left the fleet.
            return None if a.node in self.absent_but_known else NODE_GONE
        rejection = first_rejection(node, self.ctx, self.evicting)
        if rejection is None and MAX_PER_NODE in self.dynamic:
            rejection = MAX_PER_NODE.check(node, self.ctx)
        grew = self.ctx.cpu_m > millicores(a.cpu) or self.ctx.memory_mb > a.memory_mb
        if rejection is None and grew and not self.sized:
            # Unchanged replicas are never evicted for resources (they already run there);
            # a grown one must fit, or the pass would overcommit the node.
            rejection = RESOURCES.check(node, self.ctx)
        return rejection

    def take(self, replica: str, node: NodeView, *, like: Assignment | None = None) -> Assignment:
        """Bind ``replica`` to ``node`` and charge it to the running totals.

        A new replica starts at the manifest's resources. A moved one (``like``: the copy
        it replaces) of an app the orchestrator sizes keeps its live size — the size it
        was asked for in ``sizes``, else the one it ran with — when the new node has room
        for it: a move must not undo vertical sizing (issue #13). Otherwise, and for apps
        with fixed resources, the manifest's.
        """
        resources = self.app.workload.resources
        size = Size(resources.cpu, resources.memory_mb)
        if like is not None and self.sized:
            live = self.sizes.get(like.replica, Size(like.cpu, like.memory_mb))
            fits_cpu = self.ctx.free_cpu_m(node) >= millicores(live.cpu)
            if fits_cpu and self.ctx.free_memory_mb(node) >= live.memory_mb:
                size = live
        return self._bind(replica, node.node, node.site, size)

    def keep(self, a: Assignment) -> Assignment:
        """Keep a running replica where it is; its node may be missing from this pass (see
        :meth:`why_not_keep`), so the site comes from the node view when there is one,
        else from the assignment."""
        node = self.nodes.get(a.node)
        return self._bind(a.replica, a.node, a.site if node is None else node.site, self.size_of(a))

    def size_of(self, a: Assignment) -> Size:
        """The size a kept replica runs with from this pass on.

        Fixed apps: the manifest's resources. Sized apps: the size asked for in ``sizes``
        when it fits the node (a grown size that does not fit is not applied: a resize
        never evicts), else the replica's current size.
        """
        if not self.sized:
            resources = self.app.workload.resources
            return Size(resources.cpu, resources.memory_mb)
        current = Size(a.cpu, a.memory_mb)
        wanted = self.sizes.get(a.replica, current)
        node = self.nodes.get(a.node)
        if node is None:
            return current
        if wanted.cpu <= a.cpu and wanted.memory_mb <= a.memory_mb:
            return wanted
        fits_cpu = self.ctx.free_cpu_m(node) >= millicores(wanted.cpu)
        fits_memory = self.ctx.free_memory_mb(node) >= wanted.memory_mb
        return wanted if fits_cpu and fits_memory else current

    def _bind(self, replica: str, node: str, site: str, size: Size) -> Assignment:
        assignment = Assignment(
            replica=replica,
            app=self.app.name,
            node=node,
            site=site,
            cpu=size.cpu,
            memory_mb=size.memory_mb,
        )
        self.ctx.charge(node, millicores(size.cpu), size.memory_mb)
        self.ctx.replicas_on[node] = self.ctx.replicas_on.get(node, 0) + 1
        self.site_counts[site] = self.site_counts.get(site, 0) + 1
        self.taken[replica] = assignment
        return assignment

    def unplaced_reasons(self, nodes: Iterable[str]) -> list[str]:
        """The grouped reasons of ``nodes`` (every node, or a daemon's short ones)."""
        rejections = self.rejections()
        reasons = [rejections[n] for n in nodes if n in rejections]
        return group_reasons(reasons) if reasons else [NO_NODES]

    def rejections(self) -> dict[str, Rejection]:
        """Each node's first known rejection, in node-name order."""
        static = self.static_results.sorted_refusals(self.nodes)
        if not self.dynamic_rejections:
            return dict(static)
        known = dict(static)
        known.update(self.dynamic_rejections)
        return dict(sorted(known.items()))
