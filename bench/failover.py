"""Failover: from `kill -9` of a hosting agent to its replica running elsewhere.

Real processes: mosquitto, `edgefleet orchestrator run`, and agents on the simulated
runtime. For each grace period the bench kills the agent hosting one replica (its socket
closes, so the broker publishes the agent's will) and records three moments:

- ``notice_s``: kill → the retained ``offline`` status (the broker noticed);
- ``replaced_s``: kill → the app status shows the replica ``running`` on another node;
- ``over_grace_s``: ``replaced_s - notice_s - grace``: what edgefleet adds beyond the grace
  once the broker has noticed. Target: ≤ 1 s.

Run ``python -m bench.failover [--graces 0,30] [--agents 6]``; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.fleet_procs import Operator, Processes, Watcher, start_mosquitto, wait_for

TARGET_OVER_GRACE_S = 1.0


async def failover_once(url: str, workdir: Path, grace_s: float, agents: int) -> dict[str, Any]:
    root = f"bench/{uuid.uuid4().hex[:8]}"
    procs = Processes(workdir)
    watcher = Watcher(url, [f"{root}/apps/+/status", f"{root}/nodes/+/+/status"])
    await watcher.start()
    try:
        for i in range(agents):
            procs.agent(url, root, f"gw{i}", f"s{i % 3}", "--heartbeat-s", "5")
        procs.orchestrator(url, root)
        status_topic = f"{root}/apps/fo/status"

        def status() -> dict[str, Any]:
            return watcher.latest.get(status_topic, {})

        async with Operator(url, root) as op:
            await wait_for(
                lambda: (
                    sum(
                        1
                        for t, b in watcher.latest.items()
                        if t.endswith("/status") and b.get("state") == "online"
                    )
                    >= agents
                ),
                30,
                "agents online",
            )
            reply = await op.call(
                "deploy",
                manifest={
                    "name": "fo",
                    "replicas": agents // 2,
                    "workload": {"runtime": "simulated"},
                    "placement": {"max_per_node": 1},
                    "disconnect": {"grace_s": grace_s},
                },
            )
            if not reply.get("ok"):
                raise RuntimeError(f"deploy refused: {reply}")
        await wait_for(lambda: status().get("running") == agents // 2, 30, "app running")
        victim_replica = status()["replicas"][0]
        victim, name = victim_replica["node"], victim_replica["name"]
        moments: dict[str, float] = {}

        def hook(topic: str, body: dict[str, Any]) -> None:
            now = time.monotonic()
            if topic.endswith(f"/{victim}/status") and body.get("state") == "offline":
                moments.setdefault("notice", now)
            if topic == status_topic and any(
                r["name"] == name and r["node"] != victim and r["state"] == "running"
                for r in body["replicas"]
            ):
                moments.setdefault("replaced", now)

        watcher.hooks.append(hook)
        killed = time.monotonic()
        procs.procs[victim].kill()
        await wait_for(lambda: "replaced" in moments, grace_s + 30, "replacement running")
        notice = moments.get("notice", killed) - killed
        replaced = moments["replaced"] - killed
        return {
            "grace_s": grace_s,
            "agents": agents,
            "notice_s": round(notice, 3),
            "replaced_s": round(replaced, 3),
            "over_grace_s": round(replaced - notice - grace_s, 3),
            "target_over_grace_s": TARGET_OVER_GRACE_S,
            "met": replaced - notice - grace_s <= TARGET_OVER_GRACE_S,
        }
    finally:
        await watcher.stop()
        procs.close()


async def measure_async(graces: list[float], agents: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        try:
            runs = []
            for grace in graces:
                workdir = Path(tmp) / f"grace-{grace}"
                workdir.mkdir()
                runs.append(await failover_once(broker.url, workdir, grace, agents))
            return {"runs": runs}
        finally:
            broker.stop()


def measure(graces: list[float] | None = None, agents: int = 6) -> dict[str, Any]:
    return asyncio.run(measure_async(graces if graces is not None else [0.0, 30.0], agents))


def main() -> None:
    parser = argparse.ArgumentParser(description="failover benchmark")
    parser.add_argument("--graces", default="0,30")
    parser.add_argument("--agents", type=int, default=6)
    args = parser.parse_args()
    graces = [float(g) for g in args.graces.split(",")]
    print(json.dumps(measure(graces, args.agents), indent=2))


if __name__ == "__main__":
    main()
