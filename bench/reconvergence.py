"""Reconvergence: after a fault that should move nothing, the time to a correct fleet view.

The other side of :mod:`bench.failover` (which times a replica *moving* after its node is
lost): here nothing may move, and the figure is how long the fleet looks wrong. The fleet
is the chaos suite's own (``tests/harness/chaos.py``): mosquitto with persistence, the
orchestrator process, real agents (process runtime) each behind a loopback proxy, a
replicated app (one replica per node on all but one) and a daemon app. Faults:

- ``broker restart``: SIGTERM (mosquitto publishes every client's will), 3 s down;
- ``broker kill -9``: 3 s down (no wills);
- ``orchestrator restart``: ``kill -9``, 2 s down;
- ``agent return``: one agent ``kill -9``, 2 s down, within the grace.

For each, from the moment the fault is undone (the broker, orchestrator or agent started
again): ``reconverge_s`` until the orchestrator's live answers (``nodes``: every node
online; ``apps``: every app healthy with all replicas running) and the processes
themselves (each workload exactly once) are right again; and, counted by pid and start
time against a census taken before the fault, workloads ``lost``, ``restarted`` and
``duplicates`` (targets: 0).

Run ``python -m bench.reconvergence [--agents 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import stats

_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:  # the chaos suite's harness: one fleet for tests and figures
    sys.path.insert(0, str(_TESTS))

from harness.chaos import ChaosFleet, compare, until  # noqa: E402

FAULTS = ("broker restart", "broker kill -9", "orchestrator restart", "agent return")
GRACE_S = 30.0  # the manifest default: no fault here lasts long enough to force a move


async def _fault(fleet: ChaosFleet, fault: str) -> Callable[[], Awaitable[None]] | None:
    """Apply ``fault``; return how to undo it."""
    broker = fleet.broker
    assert broker is not None
    if fault == "broker restart":
        broker.stop()
        await asyncio.sleep(3.0)
        return _sync(fleet.start_broker)
    if fault == "broker kill -9":
        broker.kill()
        await asyncio.sleep(3.0)
        return _sync(fleet.start_broker)
    if fault == "orchestrator restart":
        fleet.kill_orchestrator()
        await asyncio.sleep(2.0)
        return _sync(fleet.start_orchestrator)
    if fault == "agent return":
        agent = fleet.agents[0]
        agent.kill9()
        await asyncio.sleep(2.0)
        return _sync(agent.start)
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")


def _sync(undo: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        undo()

    return run


async def measure_async(faults: tuple[str, ...], agents: int) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-reconverge-") as tmp:
        fleet = ChaosFleet(Path(tmp))
        try:
            fleet.start_broker()
            fleet.start_orchestrator()
            await fleet.add_agents(agents)
            await fleet.open_operator()
            disconnect = {"grace_s": GRACE_S}
            await fleet.deploy(
                fleet.app(
                    "web",
                    replicas=max(1, agents - 1),
                    placement={"max_per_node": 1},
                    disconnect=disconnect,
                ),
                fleet.app("logs", mode="daemon", disconnect=disconnect),
            )
            expected = agents + max(1, agents - 1)

            async def all_running() -> bool:
                census = fleet.census()
                return len(census.names()) == expected and not census.duplicates()

            await until(all_running, 120, "every replica running")
            first = fleet.census()
            await until(lambda: fleet.view_correct(first), 120, "a correct first view")
            for fault in faults:
                before = fleet.census()
                undo = await _fault(fleet, fault)
                assert undo is not None
                await undo()
                started = time.monotonic()
                await until(
                    lambda seen=before: fleet.view_correct(seen), 120, f"{fault}: correct view"
                )
                took = time.monotonic() - started
                counts = compare(before, fleet.census())
                results.append(
                    {
                        "fault": fault,
                        "reconverge_s": round(took, 3),
                        "lost": len(counts.lost),
                        "restarted": len(counts.restarted),
                        "duplicates": len(counts.duplicates),
                    }
                )
        finally:
            await fleet.stop()
    rows = []
    for r in results:
        rows.append(stats.row(r["fault"], "reconverge_s", r["reconverge_s"], key=True))
        for figure in ("lost", "restarted", "duplicates"):
            rows.append(stats.row(r["fault"], figure, r[figure], "<=", 0))
    return {"agents": agents, "grace_s": GRACE_S, "runs": results, "rows": rows}


def measure(faults: tuple[str, ...] = FAULTS, agents: int = 4) -> dict[str, Any]:
    return asyncio.run(measure_async(faults, agents))


def main() -> None:
    parser = argparse.ArgumentParser(description="reconvergence benchmark")
    parser.add_argument("--agents", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(measure(agents=args.agents), indent=2))


if __name__ == "__main__":
    main()
