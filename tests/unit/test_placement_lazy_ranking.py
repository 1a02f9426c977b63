"""The lazy ranking over the shared score book places exactly what scoring every node
afresh for every app placed (the exhaustive ranker it replaced), on randomised fleets with
ties, existing replicas, lost nodes, every spread mode and both strategies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from edgefleet_orchestrator.placement import Assignment, NodeView, pipeline, place_all, place_app
from edgefleet_protocol import validate
from edgefleet_protocol.manifest import AppManifest

from bench.exhaustive_ranking import ExhaustiveRanker
from bench.placement import synthetic_apps, synthetic_fleet


@pytest.fixture
def exhaustive() -> Iterator[Any]:
    """Runs a placement with the reference ranker swapped in, then restores the real one."""
    real = pipeline.Ranker

    def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        pipeline.Ranker = ExhaustiveRanker  # type: ignore[misc, assignment]
        try:
            return fn(*args, **kwargs)
        finally:
            pipeline.Ranker = real  # type: ignore[misc]

    return run


def _uniform_fleet(count: int, rng: random.Random) -> list[NodeView]:
    """Few distinct node sizes and sites: many exactly equal scores, so ties decide."""
    return [
        NodeView(
            node=f"n-{i:03d}",
            site=f"s{i % 3}",
            ready=True,
            cordoned=False,
            arch="x86_64",
            runtimes=frozenset({"process"}),
            cpu_cores=rng.choice((1.0, 2.0)),
            memory_mb=rng.choice((512, 1024)),
            region="eu",
        )
        for i in range(count)
    ]


def _app(name: str, replicas: int, rng: random.Random) -> AppManifest:
    placement: dict[str, Any] = rng.choice(
        (
            {},
            {"spread": "site"},
            {"strategy": "binpack"},
            {"strategy": "binpack", "spread": "site"},
            {"max_per_node": 1},
            {"strategy": "binpack", "spread": "node"},
        )
    )
    return validate(
        AppManifest,
        {
            "name": name,
            "replicas": replicas,
            "workload": {
                "runtime": "process",
                "command": ["sleep", "infinity"],
                "resources": {"cpu": rng.choice((0.1, 0.25, 0.5)), "memory_mb": 64},
            },
            "placement": placement,
        },
        forbid_unknown=True,
    )


def _some_of(assignments: list[Assignment], rng: random.Random) -> list[Assignment]:
    return [a for a in assignments if rng.random() < 0.6]


@pytest.mark.parametrize("seed", range(12))
def test_a_fleet_pass_with_many_ties_places_exactly_like_the_exhaustive_ranking(
    seed: int, exhaustive: Any
) -> None:
    rng = random.Random(seed)
    nodes = _uniform_fleet(rng.randint(1, 40), rng)
    apps = [_app(f"app-{k:02d}", rng.randint(1, 25), rng) for k in range(rng.randint(1, 12))]
    lazy = place_all(apps, nodes, [], seed=seed)
    assert lazy == exhaustive(place_all, apps, nodes, [], seed=seed)

    # A second pass from some of those replicas, with a node lost and more replicas wanted.
    existing = _some_of([a for r in lazy.values() for a in r.assignments], rng)
    grown = [a.model_copy(update={"replicas": (a.replicas or 0) + 3}) for a in apps]
    lost = frozenset({nodes[0].node})
    again = place_all(grown, nodes[1:], existing, seed=seed + 1, lost_nodes=lost)
    assert again == exhaustive(
        place_all, grown, nodes[1:], existing, seed=seed + 1, lost_nodes=lost
    )


@pytest.mark.parametrize("seed", range(3))
def test_a_varied_fleet_pass_places_exactly_like_the_exhaustive_ranking(
    seed: int, exhaustive: Any
) -> None:
    rng = random.Random(seed)
    nodes = synthetic_fleet(120, rng)
    apps = synthetic_apps(400, rng)
    lazy = place_all(apps, nodes, [], seed=seed)
    assert lazy == exhaustive(place_all, apps, nodes, [], seed=seed)
    existing = _some_of([a for r in lazy.values() for a in r.assignments], rng)
    assert place_all(apps, nodes, existing, seed=seed) == exhaustive(
        place_all, apps, nodes, existing, seed=seed
    )


def test_one_large_app_places_exactly_like_the_exhaustive_ranking(exhaustive: Any) -> None:
    rng = random.Random(5)
    nodes = _uniform_fleet(30, rng)
    app = _app("big", 200, rng).model_copy(update={"placement": _app("x", 1, rng).placement})
    assert place_app(app, nodes=nodes, assignments=[], seed=3) == exhaustive(
        place_app, app, nodes=nodes, assignments=[], seed=3
    )
