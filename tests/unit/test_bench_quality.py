"""The exact optimum the placement quality figures are divided by: checked against brute
force on instances small enough to enumerate, so a ratio of 1.0 really means optimal."""

from __future__ import annotations

import itertools

import pytest
from edgefleet_orchestrator.placement import Assignment

from bench import quality
from bench.quality import Instance, app_manifest, node_view


def brute_min_nodes(instance: Instance) -> int:
    """Fewest nodes holding every replica, by trying every count of every app per node."""
    nodes, apps = instance.nodes, instance.apps
    best = len(nodes) + 1
    per_app = [
        [c for c in itertools.product(range((a.replicas or 0) + 1), repeat=len(nodes))
         if sum(c) == a.replicas]
        for a in apps
    ]  # fmt: skip
    for combo in itertools.product(*per_app):
        ok, used = True, 0
        for j, node in enumerate(nodes):
            cpu = sum(
                round(a.workload.resources.cpu * 1000) * combo[k][j] for k, a in enumerate(apps)
            )
            mem = sum(a.workload.resources.memory_mb * combo[k][j] for k, a in enumerate(apps))
            if cpu > round(node.cpu_cores * 1000) or mem > node.memory_mb:
                ok = False
                break
            used += any(combo[k][j] for k in range(len(apps)))
        if ok:
            best = min(best, used)
    return best


def brute_min_max_load(instance: Instance) -> float:
    (app,) = instance.apps
    best = float("inf")
    for counts in itertools.product(range((app.replicas or 0) + 1), repeat=len(instance.nodes)):
        if sum(counts) != app.replicas:
            continue
        placed = [
            Assignment(f"r{j}-{i}", app.name, n.node, n.site, app.workload.resources.cpu,
                       app.workload.resources.memory_mb)
            for j, n in enumerate(instance.nodes) for i in range(counts[j])
        ]  # fmt: skip
        loads = quality.node_loads(instance.nodes, [*instance.existing, *placed])
        if max(loads.values()) <= 1.0:
            best = min(best, max(loads.values()))
    return best


TINY_PACKS = [
    Instance(
        "pack-a", "nodes_used",
        [node_view(0, 1.0, 1024), node_view(1, 2.0, 2048), node_view(2, 4.0, 4096)],
        [app_manifest("a", 3, 0.5, 256, "binpack"), app_manifest("b", 2, 1.0, 512, "binpack")], [],
    ),
    Instance(
        "pack-b", "nodes_used",
        [node_view(0, 2.0, 1024), node_view(1, 2.0, 1024), node_view(2, 2.0, 4096)],
        [app_manifest("a", 4, 0.5, 512, "binpack")], [],
    ),
]  # fmt: skip


@pytest.mark.parametrize("instance", TINY_PACKS, ids=lambda i: i.name)
def test_the_fewest_nodes_milp_agrees_with_brute_force(instance: Instance) -> None:
    best, proven = quality.optimum(instance)
    assert proven
    assert best == brute_min_nodes(instance)


@pytest.mark.parametrize("seed", range(3))
def test_the_smallest_maximum_load_milp_agrees_with_brute_force(seed: int) -> None:
    instance = quality.spread_instance(seed, "mixed", nodes=3)
    instance = Instance(
        instance.name, instance.objective, instance.nodes,
        [app_manifest("spread", 5, 0.25, 256, "spread")], instance.existing,
    )  # fmt: skip
    best, proven = quality.optimum(instance)
    assert proven
    assert best == pytest.approx(brute_min_max_load(instance))


def test_the_optimum_within_the_spread_rule_is_never_below_the_free_optimum() -> None:
    for seed in range(3):
        instance = quality.spread_instance(seed, "mixed")
        assert quality.optimum_within_spread_rule(instance) >= quality.optimum(instance)[0] - 1e-9


def test_a_node_load_is_its_busier_resource() -> None:
    node = node_view(0, 2.0, 1000)
    placed = [Assignment("r", "a", node.node, node.site, 0.5, 600)]
    assert quality.node_loads([node], placed) == {node.node: 0.6}


def test_the_pipeline_figure_counts_the_nodes_it_used() -> None:
    instance = TINY_PACKS[1]
    used, unplaced = quality.pipeline_figure(instance)
    assert unplaced == 0
    assert 1 <= used <= 3
    assert used >= quality.optimum(instance)[0]


def test_an_unknown_spread_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown spread family"):
        quality.spread_instance(0, "lumpy")
