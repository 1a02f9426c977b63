"""Link cuts: how long after its link returns a client is seen ``online`` again (issue #13).

The fleet is the chaos suite's (``tests/harness/chaos.py``): mosquitto with persistence,
real agents (process runtime) each behind a loopback proxy, and here the orchestrator
behind its own proxy too, with a replicated and a daemon app (grace 30 s, so nothing
moves). Each round cuts links as the chaos suite does (a random client, a cut of 0.3-2 s,
the link back for 0.3-1 s, ten times, seeded), where the orchestrator is one client more.

For every outage a watcher on the broker itself sees the client's retained status turn
``offline`` (its will) and ``online`` again. ``late_s`` is the time from the link's last
return to that ``online``: the reconnect schedule's retry plus the connect (protocol.md,
*Connections and reconnects*, promises about 1 s plus the connect). Two cuts of the same
client that fall into one outage count once, from the second cut's end. Workloads
``lost`` and ``restarted`` are counted by pid and start time (targets: 0).

Run ``python -m bench.link_cuts [--agents 4] [--rounds 3] [--seed 13]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

from bench import stats

_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:  # the chaos suite's harness: one fleet for tests and figures
    sys.path.insert(0, str(_TESTS))

from harness.chaos import ChaosFleet, compare, until  # noqa: E402
from harness.proxy import Proxy  # noqa: E402

ORCHESTRATOR = "orchestrator"
GRACE_S = 30.0


async def _watch(fleet: ChaosFleet, seen: list[tuple[float, str, str]]) -> None:
    """Record (time, client, state) of every node and orchestrator status."""
    async with aiomqtt.Client("127.0.0.1", fleet.port, identifier=f"watch-{fleet.root}") as c:
        await c.subscribe(f"{fleet.root}/#", qos=1)
        async for message in c.messages:
            topic = message.topic.value
            if not topic.endswith("/status") or "/apps/" in topic:
                continue
            state = json.loads(message.payload).get("state", "?") if message.payload else "?"
            who = ORCHESTRATOR if "/orchestrator/" in topic else topic.split("/")[-2]
            seen.append((time.monotonic(), who, str(state)))


def late_after_link(
    cuts: list[tuple[str, float, float]], seen: list[tuple[float, str, str]]
) -> list[tuple[str, float]]:
    """Per outage, (client, seconds from the link's last return to its next ``online``)."""
    late = []
    for i, (who, start, end) in enumerate(cuts):
        back = next((t for t, w, s in seen if w == who and s == "online" and t > start), None)
        if back is None:
            raise AssertionError(f"{who} never came back after its cut at {start:.1f}")
        if not any(c[0] == who and c[1] < back for c in cuts[i + 1 :]):
            late.append((who, back - end))  # else its next cut is part of the same outage
    return late


async def measure_async(agents: int, rounds: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-cuts-") as tmp:
        fleet = ChaosFleet(Path(tmp))
        seen: list[tuple[float, str, str]] = []
        watcher: asyncio.Task[None] | None = None
        orchestrator_link = Proxy(fleet.port)
        try:
            fleet.start_broker()
            await orchestrator_link.start()
            fleet.start_orchestrator(f"mqtt://127.0.0.1:{orchestrator_link.port}")
            await fleet.add_agents(agents)
            await fleet.open_operator()
            watcher = asyncio.create_task(_watch(fleet, seen))
            grace = {"grace_s": GRACE_S}
            await fleet.deploy(
                fleet.app("web", replicas=max(1, agents - 1), placement={"max_per_node": 1},
                          disconnect=grace),
                fleet.app("logs", mode="daemon", disconnect=grace),
            )  # fmt: skip
            expected = agents + max(1, agents - 1)

            async def all_running() -> bool:
                census = fleet.census()
                return len(census.names()) == expected and not census.duplicates()

            await until(all_running, 120, "every replica running")
            before = fleet.census()
            await until(lambda: fleet.view_correct(before), 120, "a correct first view")
            links = {a.node: a.proxy for a in fleet.agents} | {ORCHESTRATOR: orchestrator_link}
            rng = random.Random(seed)
            cuts: list[tuple[str, float, float]] = []
            for _ in range(rounds * 10):
                who = rng.choice(sorted(links))
                start = time.monotonic()
                links[who].cut()
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                links[who].restore()
                cuts.append((who, start, time.monotonic()))
                await asyncio.sleep(rng.uniform(0.3, 1.0))
            await until(lambda: fleet.view_correct(before), 120, "a correct view after the cuts")
            counts = compare(before, fleet.census())
        finally:
            if watcher is not None:
                watcher.cancel()
            await fleet.stop()
            await orchestrator_link.close()
    late = late_after_link(cuts, seen)
    agent_late = [x for who, x in late if who != ORCHESTRATOR]
    orchestrator_late = [x for who, x in late if who == ORCHESTRATOR]
    rows = [
        stats.row("agents", "late_s max", round(max(agent_late, default=0.0), 3), "<=", 1.5,
                  key=True),
        stats.row("orchestrator", "late_s max", round(max(orchestrator_late, default=0.0), 3),
                  "<=", 1.5),
        stats.row("workloads", "lost", len(counts.lost), "<=", 0),
        stats.row("workloads", "restarted", len(counts.restarted), "<=", 0),
    ]  # fmt: skip
    return {
        "agents": agents,
        "cuts": len(cuts),
        "late_s": {
            "agents": stats.summarize(agent_late) if agent_late else {},
            "orchestrator": stats.summarize(orchestrator_late) if orchestrator_late else {},
        },
        "outages": {"agents": len(agent_late), "orchestrator": len(orchestrator_late)},
        "rows": rows,
    }


def measure(agents: int = 4, rounds: int = 3, seed: int = 13) -> dict[str, Any]:
    return asyncio.run(measure_async(agents, rounds, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    print(json.dumps(measure(args.agents, args.rounds, args.seed), indent=2))


if __name__ == "__main__":
    main()
