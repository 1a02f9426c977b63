"""The placement scorers: among the nodes that pass every filter, which one is best.

Each scorer returns 0-100 (higher is better). The pipeline ranks a node by, in order:

1. **spread** — fewer replicas of this app in the node's spread domain (the node itself, or
   its whole site with ``spread: site``) ranks first. It is a rank, not a weighted term:
   any bounded weight would let a large enough allocation difference pile two replicas into
   one site while another site has none, which is exactly what ``spread`` promises against
   (it behaves like a soft topology spread with a maximum skew of one).
2. **the weighted sum** of the allocation scorer of the app's strategy (least-allocated for
   ``spread``, most-allocated for ``binpack``) and the latency scorer (lower measured latency
   to the app's latency target is better).
3. **a tie-break**: a stable hash of (seed, app, node), so equal nodes are chosen the same way
   for the same seed on every run and machine, and different apps do not all pile onto the
   same "first" node.

Stability — a running replica stays where it is — is not a score: the pipeline keeps
existing replicas before it ranks anything, so no score can ever move a healthy replica.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from edgefleet_protocol.manifest import AppManifest, Strategy

from edgefleet_orchestrator.placement.filters import FilterContext
from edgefleet_orchestrator.placement.model import NodeView


@dataclass(frozen=True, slots=True)
class Weights:
    least_allocated: float = 0.0
    most_allocated: float = 0.0
    latency: float = 0.0


WEIGHTS: dict[Strategy, Weights] = {
    # Spread: balance load; between equally loaded nodes prefer the lower latency.
    "spread": Weights(least_allocated=1.0, latency=1.0),
    # Binpack: packing dominates (fewest nodes busy); latency only breaks near-ties.
    "binpack": Weights(most_allocated=3.0, latency=1.0),
}


def spread_score(replicas_in_domain: int) -> float:
    """100 for an empty domain, 50 with one replica, 33.3 with two... (never below 0)."""
    return 100.0 / (1 + max(replicas_in_domain, 0))


def least_allocated_score(node: NodeView, ctx: FilterContext) -> float:
    """Share of the node left free after this replica, averaged over cpu and memory."""
    # Runs once per feasible node per app and pass: plain arithmetic, no helper calls.
    name = node.node
    cpu_cap = round(node.cpu_cores * 1000)
    mem_cap = node.memory_mb
    cpu = (cpu_cap - ctx.used_cpu_m.get(name, 0) - ctx.cpu_m) / cpu_cap if cpu_cap > 0 else 0.0
    mem = (mem_cap - ctx.used_memory_mb.get(name, 0) - ctx.memory_mb) / mem_cap if mem_cap else 0.0
    cpu = 0.0 if cpu < 0.0 else 1.0 if cpu > 1.0 else cpu
    mem = 0.0 if mem < 0.0 else 1.0 if mem > 1.0 else mem
    return 50.0 * (cpu + mem)


def most_allocated_score(node: NodeView, ctx: FilterContext) -> float:
    """The bin-packing preference: fewest nodes busy.

    A node already in use scores 50-100 (the fuller after this replica, the higher: best
    fit); an empty node scores below 50, larger ones higher, so a new node is opened only
    when no used one fits, and then the roomiest. Scoring plain "share in use" instead
    (classic most-allocated) prefers the smallest empty nodes, which fill fastest, and
    spreads a job over many small nodes: 7 nodes where 2 suffice on the quality bench.
    """
    name = node.node
    in_use = ctx.used_cpu_m.get(name, 0) > 0 or ctx.used_memory_mb.get(name, 0) > 0
    if in_use:
        return 50.0 + 0.5 * (100.0 - least_allocated_score(node, ctx))
    size = node.cpu_cores * 1000.0 + node.memory_mb
    return 49.0 * size / (size + 8192.0)


def latency_score(node: NodeView, app: AppManifest) -> float:
    """100 at 0 ms, 0 at the app's limit (or with no limit, or no probe)."""
    limit = app.placement.max_latency_ms
    if limit is None:
        return 0.0
    measured = node.latency_ms.get(limit.target)
    if measured is None:
        return 0.0
    return 100.0 * _unit(1.0 - measured / limit.ms)


def weighted_score(
    node: NodeView, ctx: FilterContext, weights: Weights, latency_points: float
) -> float:
    """The weighted sum of the allocation and latency scorers (``latency_points`` is
    :func:`latency_score`, passed in because it does not change during a pass)."""
    score = weights.latency * latency_points
    if weights.least_allocated:
        score += weights.least_allocated * least_allocated_score(node, ctx)
    if weights.most_allocated:
        score += weights.most_allocated * most_allocated_score(node, ctx)
    return score


_MASK64 = (1 << 64) - 1


@lru_cache(maxsize=1 << 16)
def name_hash(name: str) -> int:
    """A stable 64-bit hash of a name (cached: node names recur in every pass)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def app_salt(seed: int, app: str) -> int:
    """The per-pass, per-app part of the tie-break, computed once per app."""
    return name_hash(f"{seed}/{app}")


def salted_tie_break(salt: int, node: str) -> int:
    """:func:`tie_break` from a precomputed :func:`app_salt`: a splitmix64 finaliser over
    the salt and the node's hash, so every (seed, app) orders the nodes differently."""
    x = salt ^ name_hash(node)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def tie_break(seed: int, app: str, node: str) -> int:
    """A stable pseudo-random rank for (seed, app, node): same input, same value, anywhere."""
    return salted_tie_break(app_salt(seed, app), node)


def _unit(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
