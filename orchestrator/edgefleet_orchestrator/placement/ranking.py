"""Ranking the feasible nodes of one pass: spread first, then the weighted scorers, then
the seeded tie-break (see :mod:`.scorers` for why in that order).

Used by :mod:`.pipeline` for replicated apps; daemon apps need no ranking (every matching
node gets one replica).

A node's rank is (spread of its domain, weighted score, tie-break, name). The scores come
from the pass's :class:`~.score_book.ScoreBook`, shared by every app with the same score
signature, and are read lazily: an app placing ten replicas looks at its best dozen nodes,
not at all of them, and computes its tie-break only for the nodes whose score ties with the
one it is about to take. Placing a replica changes only the chosen node's score and its
domain's spread; such a node leaves the shared stream and is re-ranked in a small heap of
the app's own, so every placement stays O(log nodes).

Nodes failing a dynamic filter are dropped for the rest of the pass: resources only
shrink and replica counts only grow while a pass runs.
"""

from __future__ import annotations

import heapq

from edgefleet_orchestrator.placement.filters import first_rejection
from edgefleet_orchestrator.placement.model import NodeView
from edgefleet_orchestrator.placement.score_book import EVERYWHERE, ScoreBook, ScoreEntry
from edgefleet_orchestrator.placement.scorers import (
    WEIGHTS,
    app_salt,
    salted_tie_break,
    spread_score,
    weighted_score,
)
from edgefleet_orchestrator.placement.state import PassState

NodeKey = tuple[float, int, str]  # (-weighted score, tie-break, node)
_Special = tuple[float, float, int, str, int]  # (-spread, *node key, version)
_DomainKey = tuple[float, float, int, str, str, int]  # (-spread, *best node key, domain, version)
_EMPTY_SPREAD = -spread_score(0)


class _Stream:
    """The nodes of one book list in rank order for one app, read lazily.

    A run of equal scores is taken whole and ordered by the app's tie-break (the only
    per-app part of a rank), so ties cost one hash per tied node and nothing else does.
    Nodes in ``skip`` (re-ranked by the app itself, or dropped) are passed over.
    """

    __slots__ = ("_at", "_group", "_ranked", "_salt", "_skip")

    def __init__(self, ranked: list[ScoreEntry], salt: int, skip: set[str]) -> None:
        self._ranked = ranked
        self._at = 0
        self._salt = salt
        self._skip = skip
        self._group: list[NodeKey] = []  # worst first: the head is the last item

    def head(self) -> NodeKey | None:
        """The best node key not skipped, or ``None`` when the stream is exhausted."""
        skip = self._skip
        while True:
            group = self._group
            while group:
                key = group[-1]
                if key[2] in skip:
                    group.pop()
                    continue
                return key
            if not self._fill():
                return None

    def _fill(self) -> bool:
        ranked = self._ranked
        end = len(ranked)
        at = self._at
        skip = self._skip
        salt = self._salt
        while at < end:
            negative = ranked[at][0]
            run: list[NodeKey] = []
            while at < end and ranked[at][0] == negative:
                name = ranked[at][1]
                at += 1
                if name not in skip:
                    run.append((negative, salted_tie_break(salt, name), name))
            if run:
                self._at = at
                run.sort(reverse=True)
                self._group = run
                return True
        self._at = at
        return False


class Ranker:
    """The feasible nodes of one app's pass, best first (see the module docstring)."""

    def __init__(self, state: PassState, seed: int, book: ScoreBook) -> None:
        self._state = state
        app = state.app
        self._spread = app.placement.effective_spread
        self._weights = WEIGHTS[app.placement.strategy]
        self._book = book.book_for(state)
        self._salt = app_salt(seed, app.name)
        self._skip: set[str] = set()  # re-ranked by this app (in its own heaps) or dropped
        self._version: dict[str, int] = {}
        replicas_on = state.ctx.replicas_on
        if self._spread == "node":
            self._domains: list[_DomainKey] = []
            self._specials: list[_Special] = []
            ranked = self._book.ranked.get(EVERYWHERE, [])
            self._stream = _Stream(ranked, self._salt, self._skip)
            for name, count in replicas_on.items():
                if count and name in self._book.scores:
                    self._rerank_node(name)
            return
        # Spread by site, or one domain for the whole fleet: a stream per domain plus the
        # app's own re-ranked nodes, and a heap of domains by (spread, best node).
        self._streams = {
            domain: _Stream(ranked, self._salt, self._skip)
            for domain, ranked in self._book.ranked.items()
        }
        self._own: dict[str, list[tuple[float, int, str, int]]] = {d: [] for d in self._streams}
        self._domain_version = dict.fromkeys(self._streams, 0)
        self._domains = []
        for domain in self._streams:
            key = self._domain_key(domain)
            if key is not None:
                self._domains.append(key)
        heapq.heapify(self._domains)

    # -- spread by node: a shared stream of untouched nodes + the app's own heap ---------

    def _node_key(self, name: str) -> NodeKey:
        """The rank of a node the app touched, from its live score."""
        node = self._state.nodes[name]
        score = weighted_score(node, self._state.ctx, self._weights, self._book.latency[name])
        return (-score, salted_tie_break(self._salt, name), name)

    def _rerank_node(self, name: str) -> None:
        self._skip.add(name)
        version = self._version[name] = self._version.get(name, 0) + 1
        spread = spread_score(self._state.ctx.replicas_on.get(name, 0))
        key = self._node_key(name)
        heapq.heappush(self._specials, (-spread, key[0], key[1], name, version))

    def _best_by_node(self) -> NodeView | None:
        state = self._state
        specials = self._specials
        while True:
            while specials and specials[0][4] != self._version.get(specials[0][3]):
                heapq.heappop(specials)  # superseded, or dropped
            head = self._stream.head()
            use_stream = head is not None and (
                not specials or (_EMPTY_SPREAD, *head) < specials[0][:4]
            )
            if use_stream:
                assert head is not None
                name = head[2]
            elif specials:
                name = specials[0][3]
            else:
                return None
            node = state.nodes[name]
            rejection = first_rejection(node, state.ctx, state.dynamic)
            if rejection is None:
                return node
            state.dynamic_rejections[name] = rejection
            self._skip.add(name)
            self._version[name] = self._version.get(name, 0) + 1  # drops a special entry

    # -- spread by site, or everywhere ---------------------------------------------------

    def _domain_of(self, node: NodeView) -> str:
        return node.site if self._spread == "site" else EVERYWHERE

    def _domain_best(self, domain: str) -> tuple[NodeKey, bool] | None:
        """The best node key of ``domain`` and whether it is one of the app's own."""
        own = self._own[domain]
        while own and own[0][3] != self._version.get(own[0][2]):
            heapq.heappop(own)
        head = self._streams[domain].head()
        if own and (head is None or own[0][:3] < head):
            return own[0][:3], True
        return (head, False) if head is not None else None

    def _domain_key(self, domain: str) -> _DomainKey | None:
        best = self._domain_best(domain)
        if best is None:
            return None
        if self._spread == "site":
            spread = spread_score(self._state.site_counts.get(domain, 0))
        else:
            spread = 0.0
        key = best[0]
        return (-spread, key[0], key[1], key[2], domain, self._domain_version[domain])

    def _domain_changed(self, domain: str) -> None:
        self._domain_version[domain] += 1
        key = self._domain_key(domain)
        if key is not None:
            heapq.heappush(self._domains, key)

    def _best_by_domain(self) -> NodeView | None:
        state = self._state
        domains = self._domains
        while domains:
            top = domains[0]
            domain = top[4]
            if top[5] != self._domain_version[domain]:
                heapq.heappop(domains)  # superseded by a newer entry for the same domain
                continue
            node = state.nodes[top[3]]
            rejection = first_rejection(node, state.ctx, state.dynamic)
            if rejection is None:
                return node
            state.dynamic_rejections[node.node] = rejection
            self._skip.add(node.node)
            self._version[node.node] = self._version.get(node.node, 0) + 1
            heapq.heappop(domains)
            self._domain_changed(domain)
        return None

    # -- the interface the pipeline uses -------------------------------------------------

    def best(self) -> NodeView | None:
        """The best node that can take one more replica now."""
        if self._spread == "node":
            return self._best_by_node()
        return self._best_by_domain()

    def best_except(self, name: str) -> NodeView | None:
        """The best node other than ``name``, which stays a candidate afterwards: a rollout's
        make-before-break copy cannot share a node with the old copy of its replica."""
        node = self.best()
        if node is None or node.node != name:
            return node
        self._skip.add(name)
        self._version[name] = self._version.get(name, 0) + 1  # drops its entries
        if self._spread != "node":
            self._domain_changed(self._domain_of(node))
        other = self.best()
        self.took(node)  # back in, at its live rank
        return other

    def took(self, node: NodeView) -> None:
        """Record that ``node`` (the last :meth:`best`) took a replica, and re-rank it."""
        name = node.node
        if self._spread == "node":
            self._rerank_node(name)
            return
        self._skip.add(name)
        version = self._version[name] = self._version.get(name, 0) + 1
        domain = self._domain_of(node)
        key = self._node_key(name)
        heapq.heappush(self._own[domain], (key[0], key[1], name, version))
        # The domain's older entry is left in the heap: its version is stale now, so
        # _best_by_domain drops it when it surfaces (it need not be on top here).
        self._domain_changed(domain)
