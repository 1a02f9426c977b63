"""The exhaustive ranking placement used before the shared score book: every feasible node
scored and heaped once per app. Kept as the reference the lazy ranking must match choice
for choice (tests/unit/test_placement_lazy_ranking.py), and the same-run baseline of
:mod:`bench.placement`.
"""

from __future__ import annotations

import heapq

from edgefleet_orchestrator.placement.filters import first_rejection
from edgefleet_orchestrator.placement.model import NodeView
from edgefleet_orchestrator.placement.scorers import (
    WEIGHTS,
    app_salt,
    latency_score,
    salted_tie_break,
    spread_score,
    weighted_score,
)
from edgefleet_orchestrator.placement.state import PassState

_NodeKey = tuple[float, int, str]  # (-weighted score, tie-break, node)
_DomainKey = tuple[float, float, int, str, str, int]  # (-spread, *best node key, domain, version)
_EVERYWHERE = ""  # the single domain when the app does not spread


class ExhaustiveRanker:
    """The feasible nodes of one pass, best first, in two levels of heaps.

    A node's rank is (spread of its domain, weighted score, tie-break), and a placement
    changes only the chosen node's weighted score and its domain's spread. So each spread
    domain (a node, a site, or the whole fleet for ``binpack``) keeps a heap of its nodes
    by (weighted score, tie-break), which only the chosen node's re-push changes; and a
    heap of domains ranks each domain by its spread and its best node, re-pushed (with a
    new version, the old entry left to be skipped) only when that domain changes. Every
    placement is then O(log nodes), whatever the number of sites.

    Nodes failing a dynamic filter are dropped for the rest of the pass: resources only
    shrink and replica counts only grow while a pass runs.
    """

    def __init__(self, state: PassState, seed: int, book: object = None) -> None:
        self._state = state
        app = state.app
        self._spread = app.placement.effective_spread
        self._weights = WEIGHTS[app.placement.strategy]
        self._latency: dict[str, float] = {}
        self._tie: dict[str, int] = {}
        self._nodes: dict[str, list[_NodeKey]] = {}
        salt = app_salt(seed, app.name)
        scores_latency = app.placement.max_latency_ms is not None
        # This loop runs for every feasible node of every app on every pass that places
        # something: keep it to lookups and the scorers themselves.
        for node in state.feasible_nodes():
            name = node.node
            latency = latency_score(node, app) if scores_latency else 0.0
            self._latency[name] = latency
            tie = self._tie[name] = salted_tie_break(salt, name)
            score = weighted_score(node, state.ctx, self._weights, latency)
            domain = self._domain_of(node)
            heap = self._nodes.get(domain)
            if heap is None:
                self._nodes[domain] = [(-score, tie, name)]
            else:
                heap.append((-score, tie, name))
        self._version = dict.fromkeys(self._nodes, 0)
        self._domains: list[_DomainKey] = []
        for domain, heap in self._nodes.items():
            if len(heap) > 1:
                heapq.heapify(heap)
            self._domains.append(self._domain_key(domain))
        heapq.heapify(self._domains)

    def _domain_of(self, node: NodeView) -> str:
        if self._spread == "node":
            return node.node
        if self._spread == "site":
            return node.site
        return _EVERYWHERE

    def _node_key(self, node: NodeView) -> _NodeKey:
        latency = self._latency[node.node]
        score = weighted_score(node, self._state.ctx, self._weights, latency)
        return (-score, self._tie[node.node], node.node)

    def _domain_key(self, domain: str) -> _DomainKey:
        if self._spread == "node":
            spread = spread_score(self._state.ctx.replicas_on.get(domain, 0))
        elif self._spread == "site":
            spread = spread_score(self._state.site_counts.get(domain, 0))
        else:
            spread = 0.0
        best = self._nodes[domain][0]
        return (-spread, best[0], best[1], best[2], domain, self._version[domain])

    def _domain_changed(self, domain: str) -> None:
        self._version[domain] += 1
        if self._nodes[domain]:
            heapq.heappush(self._domains, self._domain_key(domain))

    def best(self) -> NodeView | None:
        """The best node that can take one more replica now."""
        state = self._state
        domains = self._domains
        while domains:
            top = domains[0]
            domain = top[4]
            if top[5] != self._version[domain]:
                heapq.heappop(domains)  # superseded by a newer entry for the same domain
                continue
            node = state.nodes[self._nodes[domain][0][2]]
            rejection = first_rejection(node, state.ctx, state.dynamic)
            if rejection is None:
                return node
            state.dynamic_rejections[node.node] = rejection
            heapq.heappop(self._nodes[domain])
            heapq.heappop(domains)
            self._domain_changed(domain)
        return None

    def took(self, node: NodeView) -> None:
        """Record that ``node`` (the last :meth:`best`) took a replica, and re-rank it."""
        domain = self._domain_of(node)
        heapq.heapreplace(self._nodes[domain], self._node_key(node))
        heapq.heappop(self._domains)
        self._domain_changed(domain)
