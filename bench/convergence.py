"""Convergence and fleet size: from the deploy command to every replica reported running.

Real processes: mosquitto, ``edgefleet orchestrator run`` and a simulated fleet in one child
process (:mod:`bench.fleets`). Once the orchestrator's fleet summary counts every node
online, the bench deploys, in turn,

- ``daemon``: one replica on every node (N replicas), then
- ``replicated``: an app of 1,000 replicas (10 per node on 100 nodes, 1 per node on 1,000),

and timestamps, on its own watcher connection, the first ``reported`` message that shows
each replica ``running``. Per replica latency = that moment minus the moment the deploy
command was sent; ``total_s`` is the slowest replica. ``status_s`` is when the app's status
(the orchestrator's own view) first counted every replica running.

Targets: 1,000 nodes all running within 3 s (both apps); fleet size = the largest fleet
whose daemon deploy converges with p99 <= 5 s.

    python -m bench.convergence --sizes 100,300,1000 [--fleet auto|lite|simulator]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import stats
from bench.cpu import CpuMeter, describe
from bench.fleet_procs import (
    BenchError,
    Mosquitto,
    Operator,
    Processes,
    Watcher,
    start_mosquitto,
    wait_for,
)
from bench.fleets import FleetKind, RunningFleet, choose, start_fleet
from bench.lite_fleet import raise_fd_limit
from bench.orchestrator_profiled import busy_share

TARGET_TOTAL_S = 3.0
TARGET_AT_NODES = 1000
TARGET_FLEET_P99_S = 5.0
REPLICATED = 1000
WORKLOAD = {"runtime": "simulated", "resources": {"cpu": 0.01, "memory_mb": 8}}


def manifests(nodes: int, cases: tuple[str, ...]) -> list[tuple[str, dict[str, Any], int]]:
    """(case, manifest, replicas expected running) for each case asked for."""
    known: dict[str, tuple[dict[str, Any], int]] = {
        "daemon": ({"name": "conv-daemon", "mode": "daemon", "workload": WORKLOAD}, nodes),
        "replicated": (
            {"name": "conv-rep", "replicas": REPLICATED, "workload": WORKLOAD},
            REPLICATED,
        ),
    }
    unknown = sorted(set(cases) - set(known))
    if unknown:
        raise BenchError(f"unknown convergence case {unknown[0]!r} (daemon or replicated)")
    return [(case, *known[case]) for case in cases]


class _Alive:
    """Raises with the child's own words as soon as the orchestrator or fleet exits."""

    def __init__(
        self, procs: Processes, fleet: RunningFleet, *, profiled: bool, broker_pid: int | None
    ) -> None:
        self.procs, self.fleet, self.profiled = procs, fleet, profiled
        self.pids = {"orchestrator": procs.procs["orchestrator"].pid, "fleet": fleet.process.pid}
        if broker_pid is not None:
            self.pids["broker"] = broker_pid

    def profile(self, signum: int) -> None:
        """Start (SIGUSR1) or stop (SIGUSR2) a profiled orchestrator's sampling window."""
        if self.profiled:
            self.procs.procs["orchestrator"].send_signal(signum)

    def check(self) -> None:
        self.fleet.check_alive()
        orch = self.procs.procs["orchestrator"]
        if orch.poll() is not None:
            log = (self.procs.workdir / "orchestrator.log").read_text(errors="replace")
            raise BenchError(f"the orchestrator exited with {orch.returncode}: {log[-2000:]}")


async def _deploy_case(
    watcher: Watcher, op: Operator, root: str, case: tuple[str, dict[str, Any], int], alive: _Alive
) -> dict[str, Any]:
    name, manifest, expected = case
    app = manifest["name"]
    status_topic = f"{root}/apps/{app}/status"
    first: dict[str, float] = {}
    ordered: dict[str, float] = {}  # replica -> its desired document seen on the wire
    status_done: list[float] = []

    def hook(topic: str, body: dict[str, Any]) -> None:
        now = time.monotonic()
        if topic.endswith("/desired"):
            for workload in body.get("workloads", []):
                if workload.get("app") == app:
                    ordered.setdefault(workload["name"], now)
        elif topic.endswith("/reported"):
            for replica, report in body.get("workloads", {}).items():
                if report.get("app") == app and report.get("state") == "running":
                    first.setdefault(replica, now)
        elif (
            topic == status_topic
            and not status_done
            and body.get("running") == expected
            and body.get("desired") == expected
        ):
            status_done.append(now)

    watcher.hooks.append(hook)
    alive.profile(signal.SIGUSR1)
    meter = CpuMeter(alive.pids)
    meter.start()
    try:
        sent = time.monotonic()
        reply = await op.call("deploy", attempts=3, timeout_s=15.0, manifest=manifest)
        if not reply.get("ok"):
            raise BenchError(f"deploy of {app} refused: {reply}")
        limit = 60.0 + expected / 100

        def done() -> bool:
            alive.check()
            return len(first) >= expected

        try:
            await wait_for(done, limit, f"{expected} replicas of {app} running")
        except BenchError:
            if len(first) == 0:
                raise
            return {"case": name, "replicas": expected, "running": len(first), "timeout_s": limit}
        await wait_for(lambda: bool(status_done), 30, f"app status of {app} counting all")
        cpu = meter.stop()
    finally:
        watcher.hooks.remove(hook)
        alive.profile(signal.SIGUSR2)
    latencies = [t - sent for t in first.values()]
    # Split each replica's time: until its desired document was out (the orchestrator:
    # command, pass, store, publish), and from there until reported running (broker,
    # agent, and the report's way back).
    out = [ordered[r] - sent for r in first if r in ordered]
    answered = [first[r] - ordered[r] for r in first if r in ordered]
    split = {}
    if out:
        split = {
            "desired_out_p50_s": round(stats.percentile(out, 50), 3),
            "desired_out_p99_s": round(stats.percentile(out, 99), 3),
            "answered_p50_s": round(stats.percentile(answered, 50), 3),
            "answered_p99_s": round(stats.percentile(answered, 99), 3),
        }
    return {
        "case": name,
        "replicas": expected,
        "running": len(first),
        **stats.summarize(latencies),
        **split,
        "total_s": round(max(latencies), 3),
        "status_s": round(status_done[0] - sent, 3),
        "cpu_s": cpu,
        "cdf_s": stats.cdf_points(latencies),
    }


async def converge_fleet(
    url: str,
    workdir: Path,
    nodes: int,
    kind: FleetKind,
    cases: tuple[str, ...],
    *,
    profile_to: Path | None = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """One fleet of ``nodes``: start it, wait until the orchestrator sees it, run the cases.
    With ``profile_to`` the orchestrator runs under pyinstrument (figures then explain, not
    measure)."""
    root = f"bench/conv-{uuid.uuid4().hex[:8]}"
    procs = Processes(workdir)
    summary_topic = f"{root}/fleet/summary"
    watcher = Watcher(
        url,
        [
            f"{root}/nodes/+/+/reported",
            f"{root}/nodes/+/+/desired",
            f"{root}/apps/+/status",
            summary_topic,
        ],
    )
    await watcher.start()
    fleet: RunningFleet | None = None
    try:
        procs.orchestrator(url, root, profile_to=profile_to)
        started = time.monotonic()
        fleet = start_fleet(kind, url, root, nodes, sites=max(1, nodes // 50), workdir=workdir)
        alive = _Alive(procs, fleet, profiled=profile_to is not None, broker_pid=broker_pid)
        connect_s = await asyncio.to_thread(fleet.wait_ready, 60 + nodes / 50)

        def all_online() -> bool:
            alive.check()
            return int(watcher.latest.get(summary_topic, {}).get("nodes_online", 0)) >= nodes

        await wait_for(all_online, 60 + nodes / 50, f"{nodes} nodes online in the fleet summary")
        ready_s = time.monotonic() - started
        results = []
        async with Operator(url, root) as op:
            for case in manifests(nodes, cases):
                results.append(await _deploy_case(watcher, op, root, case, alive))
        return {
            "nodes": nodes,
            "fleet": kind,
            "connect_s": connect_s,
            "ready_s": round(ready_s, 2),
            "cases": results,
        }
    finally:
        await watcher.stop()
        procs.close()
        if fleet is not None:
            fleet.stop()


def _rows(size: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for case in size["cases"]:
        label = f"{size['nodes']} nodes, {case['case']} ({case['replicas']} replicas)"
        if "total_s" not in case:
            rows.append(stats.row(label, "running before timeout", case["running"]))
            continue
        if size["nodes"] == TARGET_AT_NODES:
            rows.append(stats.row(label, "total_s", case["total_s"], "<=", TARGET_TOTAL_S))
        else:
            rows.append(stats.row(label, "total_s", case["total_s"]))
        rows.append(stats.row(label, "p50_s", case["p50_s"]))
        rows.append(stats.row(label, "p99_s", case["p99_s"]))
    return rows


async def _profiled(
    broker: Mosquitto, tmp: Path, nodes: int, kind: FleetKind, cases: tuple[str, ...]
) -> dict[str, Any]:
    """The same fleet again with the orchestrator under pyinstrument, sampled from the
    deploy command to convergence: where the time of a missed target went."""
    workdir = tmp / f"profiled-n{nodes}"
    workdir.mkdir()
    out = workdir / "orchestrator-profile.txt"
    run = await converge_fleet(
        broker.url, workdir, nodes, kind, cases, profile_to=out, broker_pid=broker.process.pid
    )
    text = out.read_text() if out.exists() else ""
    where = [busy_share(text) or ""]
    for case in run["cases"]:
        if "cpu_s" in case:
            where.append(f"{nodes} nodes, {case['case']}: {describe(case['cpu_s'])}.")
    return {"profile": text, "where": " ".join(where)}


async def measure_async(
    sizes: list[int], fleet: str, cases: tuple[str, ...], *, profile: bool = True
) -> dict[str, Any]:
    kind = choose(fleet)
    raise_fd_limit(max(sizes) * 2 + 1024)  # mosquitto inherits it: one socket per node
    with tempfile.TemporaryDirectory(prefix="edgefleet-conv-") as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        try:
            runs = []
            for nodes in sizes:
                workdir = Path(tmp) / f"n{nodes}"
                workdir.mkdir()
                runs.append(
                    await converge_fleet(
                        broker.url, workdir, nodes, kind, cases, broker_pid=broker.process.pid
                    )
                )
            rows = [r for s in runs for r in _rows(s)]
            result: dict[str, Any] = {"fleet": kind, "sizes": runs, "rows": rows}
            if profile and any(r["met"] is False for r in rows):
                result.update(await _profiled(broker, Path(tmp), TARGET_AT_NODES, kind, cases))
        finally:
            broker.stop()
    return result


def measure(
    sizes: list[int] | None = None,
    fleet: str = "auto",
    cases: tuple[str, ...] = ("daemon", "replicated"),
    *,
    profile: bool = True,
) -> dict[str, Any]:
    return asyncio.run(measure_async(sizes or [100, 300, 1000], fleet, cases, profile=profile))


async def fleet_size_async(sizes: list[int], fleet: str, *, curve: bool = False) -> dict[str, Any]:
    """Daemon convergence at growing sizes until p99 exceeds the limit (or a size fails);
    with ``curve``, every size is run (the curve beyond the limit too) until one fails.
    A size over the limit is explained by each process's CPU time in its window (no
    profiled rerun: at these sizes a rerun would cost minutes of the suite's budget)."""
    kind = choose(fleet)
    raise_fd_limit(max(sizes) * 2 + 1024)
    tried: list[dict[str, Any]] = []
    largest = 0
    missed = False
    explained: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgefleet-size-") as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        try:
            for nodes in sizes:
                workdir = Path(tmp) / f"n{nodes}"
                workdir.mkdir()
                try:
                    run = await converge_fleet(
                        broker.url, workdir, nodes, kind, ("daemon",), broker_pid=broker.process.pid
                    )
                except BenchError as exc:
                    tried.append({"nodes": nodes, "fleet": kind, "error": str(exc)[:500]})
                    break
                tried.append(run)
                case = run["cases"][0]
                if "p99_s" not in case or case["p99_s"] > TARGET_FLEET_P99_S:
                    if "cpu_s" in case:
                        where = f"{nodes} nodes: {describe(case['cpu_s'])}."
                        explained["where"] = " ".join(filter(None, [explained.get("where"), where]))
                    missed = True
                    if not curve:
                        break
                    continue
                if not missed:
                    largest = nodes  # the largest of the sizes that met it before any miss
        finally:
            broker.stop()
    rows = []
    for run in tried:
        label = f"{run['nodes']} nodes, daemon"
        if "error" in run:
            rows.append(stats.row(label, "failed to run", 0))
            continue
        case = run["cases"][0]
        if "p99_s" in case:
            rows.append(stats.row(label, "p99_s", case["p99_s"], "<=", TARGET_FLEET_P99_S))
        else:
            rows.append(stats.row(label, "running before timeout", case["running"]))
    rows.append(stats.row("largest fleet with p99 <= 5 s", "nodes", largest, key=True))
    return {"fleet": kind, "largest_nodes": largest, "tried": tried, "rows": rows, **explained}


def fleet_size(
    sizes: list[int] | None = None, fleet: str = "auto", *, curve: bool = False
) -> dict[str, Any]:
    return asyncio.run(fleet_size_async(sizes or [2000, 5000, 10000], fleet, curve=curve))


def main() -> None:
    parser = argparse.ArgumentParser(description="convergence benchmark")
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--fleet", default="auto", help="auto, simulator or lite")
    parser.add_argument("--cases", default="daemon,replicated")
    parser.add_argument("--fleet-size", action="store_true", help="search the largest fleet")
    parser.add_argument(
        "--curve", action="store_true", help="with --fleet-size: run every size, past a miss"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.fleet_size:
        print(json.dumps(fleet_size(sizes, args.fleet, curve=args.curve), indent=2))
    else:
        print(json.dumps(measure(sizes, args.fleet, tuple(args.cases.split(","))), indent=2))


if __name__ == "__main__":
    main()
