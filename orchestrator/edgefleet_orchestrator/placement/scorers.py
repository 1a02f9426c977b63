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

from edgefleet_orchestrator.manifest import AppManifest, Strategy
from edgefleet_orchestrator.placement.filters import FilterContext, millicores
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
    cpu_cap = millicores(node.cpu_cores)
    cpu_free = (ctx.free_cpu_m(node) - ctx.cpu_m) / cpu_cap if cpu_cap > 0 else 0.0
    mem_free = (
        (ctx.free_memory_mb(node) - ctx.memory_mb) / node.memory_mb if node.memory_mb > 0 else 0.0
    )
    return 100.0 * (_unit(cpu_free) + _unit(mem_free)) / 2


def most_allocated_score(node: NodeView, ctx: FilterContext) -> float:
    """Share of the node in use after this replica: the bin-packing preference."""
    return 100.0 - least_allocated_score(node, ctx)


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


def tie_break(seed: int, app: str, node: str) -> int:
    """A stable pseudo-random rank for (seed, app, node): same input, same value, anywhere."""
    digest = hashlib.blake2b(f"{seed}/{app}/{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _unit(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
