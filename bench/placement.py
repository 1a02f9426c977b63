"""Placement throughput: how many replicas one placement pass places per second.

Run ``python -m bench.placement [--nodes N] [--replicas R] [--seed S]``; it prints one JSON
object. :func:`measure` builds a synthetic fleet (sites, regions, labels, latency probes and
mixed device sizes, all from the seed) and times three passes with the real pipeline:

- ``fleet``: ``place_all`` of R replicas spread over R/10 apps with varied constraints
  (regions, label selectors, latency limits, bin-packing, per-node limits) onto an empty
  fleet — the cost of a cold start or of a full reschedule;
- ``single_app``: one app of R replicas spread across sites;
- ``steady``: the ``fleet`` pass again with its own result as input, where everything is
  kept — what a pass with nothing changed costs when it is placed afresh;
- ``steady_memo``: the same pass as the reconcile loop runs it, with the shell's
  :class:`~edgefleet_orchestrator.placement.memo.PlacementMemo` primed by the pass before
  and new (equal) node views, as the shell builds them every pass — the cost the loop
  pays when nothing changed;
- ``baseline``: the ``fleet`` pass with the exhaustive ranking it replaced (every feasible
  node scored for every app, :mod:`bench.exhaustive_ranking`), timed in the same run.

Each figure is the median of ``repeat`` runs (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from edgefleet_orchestrator.placement import Assignment, NodeView, pipeline, place_all, place_app
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_protocol import validate
from edgefleet_protocol.manifest import AppManifest

from bench.exhaustive_ranking import ExhaustiveRanker

REGIONS = ("eu", "us", "ap")
SIZES = ((1.0, 1024), (2.0, 2048), (4.0, 4096), (8.0, 8192))


def synthetic_fleet(count: int, rng: random.Random) -> list[NodeView]:
    nodes = []
    for i in range(count):
        cores, memory = rng.choice(SIZES)
        nodes.append(
            NodeView(
                node=f"gw-{i:05d}",
                site=f"site-{i % 20:02d}",
                ready=rng.random() > 0.02,
                cordoned=rng.random() < 0.01,
                arch=rng.choice(("aarch64", "x86_64")),
                runtimes=frozenset({"process", "docker"}),
                cpu_cores=cores,
                memory_mb=memory,
                labels={"role": rng.choice(("gw", "gw", "sensor")), "zone": rng.choice("abc")},
                region=REGIONS[i % len(REGIONS)],
                sensors=frozenset({"camera"}) if rng.random() < 0.3 else frozenset(),
                latency_ms={"camera-hub": rng.uniform(1, 120)},
                bandwidth_mbps=rng.choice((5.0, 20.0, 100.0)),
            )
        )
    return nodes


def synthetic_apps(replicas: int, rng: random.Random, per_app: int = 10) -> list[AppManifest]:
    apps = []
    count = max(replicas // per_app, 1)
    for k in range(count):
        size = per_app if k < count - 1 else replicas - per_app * (count - 1)
        placement: dict[str, Any] = {}
        kind = k % 5
        if kind == 1:
            placement["regions"] = [REGIONS[k % len(REGIONS)]]
        elif kind == 2:
            placement.update(selector={"role": "gw"}, max_per_node=2)
        elif kind == 3:
            placement.update(max_latency_ms={"target": "camera-hub", "ms": 100}, spread="site")
        elif kind == 4:
            placement["strategy"] = "binpack"
        apps.append(
            validate(
                AppManifest,
                {
                    "name": f"app-{k:04d}",
                    "replicas": size,
                    "workload": {
                        "runtime": "process",
                        "command": ["sleep", "infinity"],
                        "resources": {"cpu": rng.choice((0.05, 0.1)), "memory_mb": 32},
                    },
                    "placement": placement,
                },
                forbid_unknown=True,
            )
        )
    return apps


def _median_seconds(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``repeat`` runs. CPU time is reported too
    because on a shared machine the wall clock also measures the neighbours."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(
    nodes: int = 1000, replicas: int = 1000, seed: int = 0, repeat: int = 3
) -> dict[str, Any]:
    """Time the three passes; returns seconds, placements and placements per second."""
    rng = random.Random(seed)
    fleet = synthetic_fleet(nodes, rng)
    apps = synthetic_apps(replicas, rng)
    cold = place_all(apps, fleet, [], seed=seed)
    placed: list[Assignment] = [a for r in cold.values() for a in r.assignments]
    fleet_s, fleet_cpu = _median_seconds(lambda: place_all(apps, fleet, [], seed=seed), repeat)
    baseline_s, baseline_cpu = _median_seconds(
        lambda: _with_exhaustive_ranking(lambda: place_all(apps, fleet, [], seed=seed)), repeat
    )
    steady_s, steady_cpu = _median_seconds(
        lambda: place_all(apps, fleet, placed, seed=seed), repeat
    )
    memo = PlacementMemo()
    kept = place_all(apps, fleet, placed, seed=seed, memo=memo)
    again = [a for name in sorted(kept) for a in kept[name].assignments]
    views = iter([[dataclasses.replace(n) for n in fleet] for _ in range(repeat)])
    memo_s, memo_cpu = _median_seconds(
        lambda: place_all(apps, next(views), again, seed=seed, memo=memo), repeat
    )

    one = validate(
        AppManifest,
        {
            "name": "single",
            "replicas": replicas,
            "workload": {
                "runtime": "process",
                "command": ["sleep", "infinity"],
                "resources": {"cpu": 0.01, "memory_mb": 8},
            },
            "placement": {"spread": "site"},
        },
    )
    single = place_app(one, nodes=fleet, assignments=[], seed=seed)
    single_s, single_cpu = _median_seconds(
        lambda: place_app(one, nodes=fleet, assignments=[], seed=seed), repeat
    )
    return {
        "nodes": nodes,
        "replicas": replicas,
        "apps": len(apps),
        "seed": seed,
        "fleet": {
            "seconds": round(fleet_s, 4),
            "cpu_seconds": round(fleet_cpu, 4),
            "placed": len(placed),
            "unplaced": sum(r.unplaced_count for r in cold.values()),
            "placements_per_s": round(len(placed) / fleet_s),
            "placements_per_cpu_s": round(len(placed) / fleet_cpu) if fleet_cpu else None,
        },
        "single_app": {
            "seconds": round(single_s, 4),
            "cpu_seconds": round(single_cpu, 4),
            "placed": len(single.assignments),
            "placements_per_s": round(len(single.assignments) / single_s),
        },
        "baseline": {
            "seconds": round(baseline_s, 4),
            "cpu_seconds": round(baseline_cpu, 4),
            "placements_per_s": round(len(placed) / baseline_s),
            "speedup_cpu": round(baseline_cpu / fleet_cpu, 2) if fleet_cpu else None,
        },
        "steady": {
            "seconds": round(steady_s, 4),
            "cpu_seconds": round(steady_cpu, 4),
            "kept": sum(len(r.kept) for r in place_all(apps, fleet, placed, seed=seed).values()),
        },
        "steady_memo": {
            "seconds": round(memo_s, 5),
            "cpu_seconds": round(memo_cpu, 5),
            "answered_from_memo": memo.hits,
        },
        "placements_per_s": round(len(placed) / fleet_s),
        "seconds": round(fleet_s, 4),
    }


def _with_exhaustive_ranking(run: Callable[[], object]) -> object:
    """Run a placement with the pre-score-book ranking swapped in (the same-run baseline)."""
    real = pipeline.Ranker
    pipeline.Ranker = ExhaustiveRanker  # type: ignore[misc, assignment]
    try:
        return run()
    finally:
        pipeline.Ranker = real  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.nodes, args.replicas, args.seed, args.repeat), indent=2))


if __name__ == "__main__":
    main()
