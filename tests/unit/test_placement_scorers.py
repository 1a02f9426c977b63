"""Placement scorers: 0-100, in the direction each promises, and a stable tie-break."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_orchestrator.placement import NodeView
from edgefleet_orchestrator.placement.filters import FilterContext
from edgefleet_orchestrator.placement.scorers import (
    WEIGHTS,
    Weights,
    latency_score,
    least_allocated_score,
    most_allocated_score,
    spread_score,
    tie_break,
    weighted_score,
)
from edgefleet_protocol import validate
from edgefleet_protocol.manifest import AppManifest


def make_app(*, cpu: float = 1.0, memory_mb: int = 512, **placement: Any) -> AppManifest:
    data = {
        "name": "app",
        "replicas": 1,
        "workload": {
            "runtime": "process",
            "command": ["sleep", "infinity"],
            "resources": {"cpu": cpu, "memory_mb": memory_mb},
        },
        "placement": placement,
    }
    return validate(AppManifest, data, forbid_unknown=True)


def make_node(name: str = "gw-1", **fields: Any) -> NodeView:
    base: dict[str, Any] = {
        "node": name,
        "site": "s1",
        "ready": True,
        "cordoned": False,
        "arch": "aarch64",
        "runtimes": frozenset({"process"}),
        "cpu_cores": 4.0,
        "memory_mb": 2048,
    }
    base.update(fields)
    return NodeView(**base)


def context(app: AppManifest, *, cpu_m: int = 0, memory_mb: int = 0) -> FilterContext:
    ctx = FilterContext.for_app(app)
    ctx.charge("gw-1", cpu_m, memory_mb)
    return ctx


def test_spread_prefers_domains_with_fewer_replicas_within_0_to_100() -> None:
    scores = [spread_score(n) for n in range(6)]
    assert scores[0] == 100
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)
    assert all(0 < s <= 100 for s in scores)


LOADS = [(0, 0), (1000, 512), (2000, 1024), (3000, 1536)]


def test_least_allocated_falls_and_most_allocated_rises_as_a_node_fills() -> None:
    app = make_app()
    node = make_node()
    least = [least_allocated_score(node, context(app, cpu_m=c, memory_mb=m)) for c, m in LOADS]
    most = [most_allocated_score(node, context(app, cpu_m=c, memory_mb=m)) for c, m in LOADS]
    assert least == sorted(least, reverse=True)
    assert most == sorted(most)
    assert len(set(least)) == len(LOADS)
    assert all(0 <= s <= 100 for s in least + most)


def test_bin_packing_prefers_any_used_node_then_the_roomiest_empty_one() -> None:
    app = make_app(cpu=0.5, memory_mb=256)
    small, big = (
        make_node("gw-1", cpu_cores=1.0, memory_mb=1024),
        make_node("gw-1", cpu_cores=8.0, memory_mb=8192),
    )
    empty_small = most_allocated_score(small, context(app))
    empty_big = most_allocated_score(big, context(app))
    used_big = most_allocated_score(big, context(app, cpu_m=500, memory_mb=256))
    # Classic most-allocated would pick the small node (it fills fastest) and spread a job
    # over many small nodes; opening the roomiest node first keeps the node count down.
    assert empty_small < empty_big < 50 <= used_big <= 100


def test_allocation_scores_count_the_replica_being_placed() -> None:
    # 1 of 4 cores and 512 of 2048 MB: a quarter used after placing on an empty node.
    app = make_app(cpu=1.0, memory_mb=512)
    assert least_allocated_score(make_node(), context(app)) == pytest.approx(75)
    # On a node already in use, bin-packing scores 50 + half the share in use after it.
    used = context(app, cpu_m=1000, memory_mb=512)
    assert most_allocated_score(make_node(), used) == pytest.approx(50 + 0.5 * 50)


def test_allocation_scores_stay_in_range_on_an_overcommitted_node() -> None:
    app = make_app()
    ctx = context(app, cpu_m=10_000, memory_mb=10_000)
    assert least_allocated_score(make_node(), ctx) == 0
    assert most_allocated_score(make_node(), ctx) == 100


LATENCIES: list[tuple[str, dict[str, float], float]] = [
    ("no latency at all scores 100", {"hub": 0.0}, 100.0),
    ("half the limit scores 50", {"hub": 25.0}, 50.0),
    ("at the limit scores 0", {"hub": 50.0}, 0.0),
    ("over the limit scores 0, not less", {"hub": 80.0}, 0.0),
    ("no probe scores 0", {}, 0.0),
]


@pytest.mark.parametrize(
    ("probes", "expected"), [c[1:] for c in LATENCIES], ids=[c[0] for c in LATENCIES]
)
def test_lower_latency_to_the_target_scores_higher(
    probes: dict[str, float], expected: float
) -> None:
    app = make_app(max_latency_ms={"target": "hub", "ms": 50})
    assert latency_score(make_node(latency_ms=probes), app) == pytest.approx(expected)


def test_latency_scores_nothing_for_an_app_without_a_latency_limit() -> None:
    assert latency_score(make_node(latency_ms={"hub": 1.0}), make_app()) == 0


def test_the_weighted_score_sums_the_weighted_scorers() -> None:
    app = make_app()
    ctx = context(app)
    node = make_node()
    least = least_allocated_score(node, ctx)
    assert weighted_score(node, ctx, Weights(least_allocated=2.0, latency=1.0), 40.0) == (
        pytest.approx(2 * least + 40)
    )
    assert weighted_score(node, ctx, Weights(most_allocated=3.0), 40.0) == pytest.approx(
        3 * most_allocated_score(node, ctx)
    )


def test_each_strategy_weighs_its_own_allocation_scorer() -> None:
    assert WEIGHTS["spread"].least_allocated > 0
    assert WEIGHTS["spread"].most_allocated == 0
    assert WEIGHTS["binpack"].most_allocated > 0
    assert WEIGHTS["binpack"].least_allocated == 0
    # In binpack, packing must outweigh the best possible latency difference.
    assert WEIGHTS["binpack"].most_allocated > WEIGHTS["binpack"].latency


def test_the_tie_break_is_stable_and_depends_on_seed_app_and_node() -> None:
    assert tie_break(7, "web", "gw-1") == tie_break(7, "web", "gw-1")
    assert tie_break(7, "web", "gw-1") != tie_break(8, "web", "gw-1")
    assert tie_break(7, "web", "gw-1") != tie_break(7, "api", "gw-1")
    assert tie_break(7, "web", "gw-1") != tie_break(7, "web", "gw-2")


def test_the_tie_break_orders_nodes_differently_for_different_seeds() -> None:
    nodes = [f"gw-{i}" for i in range(20)]
    orders = {
        tuple(sorted(nodes, key=lambda n, s=seed: tie_break(s, "web", n))) for seed in range(5)
    }
    assert len(orders) == 5
