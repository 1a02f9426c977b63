"""The orchestrator process's garbage-collector settings (:func:`tune`).

Who calls it: ``edgefleet orchestrator run`` (:mod:`edgefleet_orchestrator.exporters.run`)
once before the service starts, and the benchmarks' profiled orchestrator.

Why: at 10,000 nodes the orchestrator holds millions of long-lived objects (every node's
record and last messages as models, every node's desired document and its JSON), and
CPython's default thresholds (700, 10, 10) let one deploy, which makes 10,000 documents and
takes in 10,000 reports, start several full collections, each walking the whole heap:
7.0 of the 8.0 s of garbage collection measured in a profiled 10,000-node deploy window
(bench/results/2026-12-06b-vm-fleet-size-lite.md) were 7 full collections. Reference
counting frees acyclic garbage at once; the collector is only needed for cycles, which
the orchestrator's data rarely forms, so collecting far less often costs little memory.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 20)
"""Young collections every 50,000 net allocations (the default 700 made 1,200 of them
in that window), a middle one every 20, a full one every 20 of those at most."""


def tune() -> None:
    """Collect once, move what exists (modules, configuration, the loaded store) out of the
    collector's sight (``gc.freeze``), and collect less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
