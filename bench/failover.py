"""Failover: from losing a hosting agent to its replica running elsewhere.

Real processes: mosquitto, `edgefleet orchestrator run`, and agents on the simulated
runtime. For each (mode, grace) run the bench deploys an app with one replica per node on
half the agents, then takes away the agent hosting one replica:

- ``kill``: `kill -9`; its socket closes, so the broker publishes its will at once;
- ``cut``: the agent talks to the broker through a :class:`~bench.tcp_proxy.CuttableProxy`,
  which goes silent without closing anything; the broker notices only by keepalive expiry
  (1.5 x the agent's keepalive, ``--keepalive-s`` here) and then publishes the will.

Three moments, from the kill or cut:

- ``notice_s``: the retained ``offline`` status arrives (the broker noticed);
- ``replaced_s``: the app status shows the replica ``running`` on another node;
- ``over_grace_s``: ``replaced_s - notice_s - grace``: what edgefleet adds beyond the grace
  once the broker has noticed. Target: <= 1 s.

Run ``python -m bench.failover [--runs kill:0,cut:0,kill:30,cut:30] [--agents 6]``.
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

from bench import stats
from bench.fleet_procs import BenchError, Operator, Processes, Watcher, start_mosquitto, wait_for
from bench.tcp_proxy import CuttableProxy

TARGET_OVER_GRACE_S = 1.0
DEFAULT_GRACE_S = 30.0  # the manifest's disconnect.grace_s default
CUT_KEEPALIVE_S = 5  # the smallest keepalive the agent accepts: notice at ~7.5 s
MODES = ("kill", "cut")


async def failover_once(
    url: str, workdir: Path, grace_s: float, agents: int, mode: str = "kill"
) -> dict[str, Any]:
    if mode not in MODES:
        raise BenchError(f"unknown failover mode {mode!r} (kill or cut)")
    root = f"bench/{uuid.uuid4().hex[:8]}"
    procs = Processes(workdir)
    proxies: dict[str, CuttableProxy] = {}
    watcher = Watcher(url, [f"{root}/apps/+/status", f"{root}/nodes/+/+/status"])
    await watcher.start()
    try:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        tag = root.rsplit("/", 1)[-1][:4]  # node ids (and so client ids) unique per run
        for i in range(agents):
            node = f"gw{i}-{tag}"
            agent_url = url
            extra = ["--heartbeat-s", "5"]
            if mode == "cut":
                proxy = proxies[node] = CuttableProxy(host, int(port))
                agent_url = f"mqtt://127.0.0.1:{await proxy.start()}"
                extra += ["--keepalive-s", str(CUT_KEEPALIVE_S)]
            procs.agent(agent_url, root, node, f"s{i % 3}", *extra)
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
                raise BenchError(f"deploy refused: {reply}")
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
        lost = time.monotonic()
        if mode == "kill":
            procs.procs[victim].kill()
        else:
            proxies[victim].cut()
        notice_limit = 3 * CUT_KEEPALIVE_S if mode == "cut" else 10
        await wait_for(lambda: "notice" in moments, notice_limit, "the broker to notice")
        await wait_for(lambda: "replaced" in moments, grace_s + 30, "replacement running")
        notice = moments["notice"] - lost
        replaced = moments["replaced"] - lost
        over = replaced - notice - grace_s
        return {
            "mode": mode,
            "grace_s": grace_s,
            "agents": agents,
            "keepalive_s": CUT_KEEPALIVE_S if mode == "cut" else None,
            "notice_s": round(notice, 3),
            "replaced_s": round(replaced, 3),
            "over_grace_s": round(over, 3),
            "target_over_grace_s": TARGET_OVER_GRACE_S,
            "met": over <= TARGET_OVER_GRACE_S,
        }
    finally:
        await watcher.stop()
        procs.close()
        for proxy in proxies.values():
            await proxy.close()


def parse_runs(text: str) -> list[tuple[str, float]]:
    """``"kill:0,cut:30"`` -> ``[("kill", 0.0), ("cut", 30.0)]``."""
    runs = []
    for part in text.split(","):
        mode, _, grace = part.strip().partition(":")
        if mode not in MODES or not grace:
            raise ValueError(f"run {part!r} is not MODE:GRACE with MODE kill or cut")
        runs.append((mode, float(grace)))
    return runs


async def measure_async(
    runs: list[tuple[str, float]], agents: int, *, concurrent: bool = False
) -> dict[str, Any]:
    """Each (mode, grace) on its own fleet and topic root; one after the other, unless
    ``concurrent`` (the smoke run: coverage, not figures)."""
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")

        async def one(mode: str, grace: float) -> dict[str, Any]:
            workdir = Path(tmp) / f"{mode}-{grace}"
            workdir.mkdir()
            return await failover_once(broker.url, workdir, grace, agents, mode)

        try:
            if concurrent:
                results = list(await asyncio.gather(*(one(m, g) for m, g in runs)))
            else:
                results = [await one(m, g) for m, g in runs]
        finally:
            broker.stop()
    rows = []
    for run in results:
        label = f"{run['mode']}, grace {run['grace_s']:g} s"
        rows.append(stats.row(label, "notice_s", run["notice_s"]))
        rows.append(stats.row(label, "replaced_s", run["replaced_s"]))
        rows.append(
            stats.row(label, "over_grace_s", run["over_grace_s"], "<=", TARGET_OVER_GRACE_S)
        )
    return {"runs": results, "rows": rows}


def measure(
    runs: list[tuple[str, float]] | None = None, agents: int = 6, *, concurrent: bool = False
) -> dict[str, Any]:
    default = [("kill", 0.0), ("cut", 0.0), ("kill", DEFAULT_GRACE_S), ("cut", DEFAULT_GRACE_S)]
    chosen = runs if runs is not None else default
    return asyncio.run(measure_async(chosen, agents, concurrent=concurrent))


def main() -> None:
    parser = argparse.ArgumentParser(description="failover benchmark")
    parser.add_argument("--runs", default="kill:0,cut:0,kill:30,cut:30")
    parser.add_argument("--agents", type=int, default=6)
    args = parser.parse_args()
    print(json.dumps(measure(parse_runs(args.runs), args.agents), indent=2))


if __name__ == "__main__":
    main()
