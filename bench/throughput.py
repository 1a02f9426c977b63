"""Placement throughput against its targets, with a profile of the pass when one is missed.

Wraps :func:`bench.placement.measure` (the pure pipeline, synthetic fleets): 1,000 nodes x
1,000 replicas (a full fleet pass within 1 s) and 1,000 nodes x 10,000 replicas (at least
10,000 placements per second, and a pass with nothing changed within 20 ms as the reconcile
loop runs it, with its placement memo). The ``fleet`` pass — many small apps with varied
constraints — is the one held to the targets; one big app (``single_app``) and the
nothing-changed pass placed afresh (``steady``) are shown for context.
"""

from __future__ import annotations

import random
from typing import Any

from edgefleet_orchestrator.placement import place_all
from pyinstrument import Profiler

from bench import placement, stats
from bench.orchestrator_profiled import profile_text, share_of

TARGET_PER_S = 10_000
TARGET_1000_S = 1.0
TARGET_STEADY_S = 0.020


def profile_fleet_pass(nodes: int, replicas: int, seed: int = 0) -> str:
    """pyinstrument's view of one cold fleet pass (a separate, unmeasured run)."""
    rng = random.Random(seed)
    fleet = placement.synthetic_fleet(nodes, rng)
    apps = placement.synthetic_apps(replicas, rng)
    profiler = Profiler(interval=0.001)
    profiler.start()
    place_all(apps, fleet, [], seed=seed)
    profiler.stop()
    return profile_text(profiler)


def measure(*, smoke: bool = False) -> dict[str, Any]:
    big_replicas = 1000 if smoke else 10_000
    small = placement.measure(
        100 if smoke else 1000, 100 if smoke else 1000, repeat=1 if smoke else 3
    )
    big = placement.measure(100 if smoke else 1000, big_replicas, repeat=1)
    rows = [
        stats.row(
            f"{small['nodes']} nodes x {small['replicas']} replicas",
            "fleet pass seconds",
            small["fleet"]["seconds"],
            "<=",
            TARGET_1000_S,
        ),
        stats.row(
            f"{big['nodes']} nodes x {big['replicas']} replicas ({big['apps']} apps)",
            "fleet pass placements/s",
            big["fleet"]["placements_per_s"],
            ">=",
            TARGET_PER_S,
        ),
        stats.row(
            f"{big['nodes']} nodes x {big['replicas']} replicas (1 app)",
            "single app placements/s",
            big["single_app"]["placements_per_s"],
            key=True,
        ),
        stats.row(
            f"{big['nodes']} nodes x {big['replicas']} replicas ({big['apps']} apps)",
            "baseline: exhaustive ranking placements/s (same run)",
            big["baseline"]["placements_per_s"],
            key=True,
        ),
        stats.row(
            f"{big['nodes']} nodes x {big['replicas']} replicas, nothing changed",
            "steady pass seconds (the reconcile loop's, with its placement memo)",
            big["steady_memo"]["seconds"],
            "<=",
            TARGET_STEADY_S,
        ),
        stats.row(
            f"{big['nodes']} nodes x {big['replicas']} replicas, nothing changed",
            "steady pass seconds, placed afresh (no memo)",
            big["steady"]["seconds"],
        ),
    ]
    result: dict[str, Any] = {"runs": {"small": small, "big": big}, "rows": rows}
    if any(r["met"] is False for r in rows):
        profile = result["profile"] = profile_fleet_pass(big["nodes"], big["replicas"])
        ranking = share_of(profile, "Ranker.__init__")
        if ranking is not None:
            result["where"] = (
                f"Building the ranking (Ranker.__init__: every feasible node scored, keyed and"
                f" heaped once per app) takes {ranking[0]:.2f} s of the {ranking[1]:.2f} s"
                f" profiled pass, for {big['apps']} apps of about"
                f" {big['replicas'] // max(big['apps'], 1)} replicas each: the pass costs"
                f" apps x nodes, while a single {big['replicas']}-replica app places"
                f" {big['single_app']['placements_per_s']:,}/s."
            )
    return result
