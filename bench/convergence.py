"""Convergence and fleet size: from the deploy command to every replica reported running.

Real processes: mosquitto, ``edgefleet orchestrator run`` and a simulated fleet in one child
process (:mod:`bench.fleets`). Once the orchestrator's fleet summary counts every node
online (the registration phase, timed on its own: :mod:`bench.converge_run`), the bench
deploys, in turn,

- ``daemon``: one replica on every node (N replicas), then
- ``replicated``: an app of 1,000 replicas (10 per node on 100 nodes, 1 per node on 1,000),

and timestamps, on its own watcher connection, the first ``reported`` message that shows
each replica ``running``. Per replica latency = that moment minus the moment the deploy
command was sent; ``total_s`` is the slowest replica. ``status_s`` is when the app's status
(the orchestrator's own view) first counted every replica running.

Targets: 1,000 nodes all running within 3 s (both apps); fleet size = the largest fleet
whose daemon deploy converges with p99 <= 5 s.

    python -m bench.convergence --sizes 100,300,1000 [--fleet auto|lite|simulator]
    python -m bench.convergence --fleet lite --sizes 1000,10000 --fleet-size --curve \
        [--profile 10000 --profile-dir DIR]

``--profile N`` (fleet size) runs N once more with the orchestrator under pyinstrument and
writes its registration and deploy windows to ``--profile-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from bench import stats
from bench.converge_run import WORKLOAD, converge_fleet
from bench.cpu import describe
from bench.fleet_procs import BenchError, Mosquitto, start_mosquitto
from bench.fleets import FleetKind, choose
from bench.lite_fleet import raise_fd_limit
from bench.orchestrator_profiled import busy_share

TARGET_TOTAL_S = 3.0
TARGET_AT_NODES = 1000
TARGET_FLEET_P99_S = 5.0
REPLICATED = 1000


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
        broker.url,
        workdir,
        nodes,
        kind,
        manifests(nodes, cases),
        profile_to=out,
        broker_pid=broker.process.pid,
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
                        broker.url,
                        workdir,
                        nodes,
                        kind,
                        manifests(nodes, cases),
                        broker_pid=broker.process.pid,
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


async def fleet_size_async(
    sizes: list[int],
    fleet: str,
    *,
    curve: bool = False,
    profile: int | None = None,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Daemon convergence at growing sizes until p99 exceeds the limit (or a size fails);
    with ``curve``, every size is run (the curve beyond the limit too) until one fails.
    A size over the limit is explained by each process's CPU time in its window; a
    profiled rerun only when asked (``profile``: that size once more, its registration
    and deploy windows written to ``profile_dir``), as it costs minutes at these sizes."""
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
                        broker.url,
                        workdir,
                        nodes,
                        kind,
                        manifests(nodes, ("daemon",)),
                        broker_pid=broker.process.pid,
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
            if profile is not None:
                explained["profiled"] = await _profiled_size(
                    broker, Path(tmp), profile, kind, profile_dir or Path(tmp)
                )
        finally:
            broker.stop()
    rows = []
    for run in tried:
        label = f"{run['nodes']} nodes, daemon"
        if "error" in run:
            rows.append(stats.row(label, "failed to run", 0))
            continue
        if "registered_s" in run:
            rows.append(stats.row(f"{run['nodes']} nodes", "registered_s", run["registered_s"]))
        case = run["cases"][0]
        if "p99_s" in case:
            rows.append(stats.row(label, "p99_s", case["p99_s"], "<=", TARGET_FLEET_P99_S))
        else:
            rows.append(stats.row(label, "running before timeout", case["running"]))
    rows.append(stats.row("largest fleet with p99 <= 5 s", "nodes", largest, key=True))
    return {"fleet": kind, "largest_nodes": largest, "tried": tried, "rows": rows, **explained}


async def _profiled_size(
    broker: Mosquitto, tmp: Path, nodes: int, kind: FleetKind, to: Path
) -> dict[str, Any]:
    """``nodes`` once more with the orchestrator under pyinstrument: the registration
    window (fleet start to every node online) and the deploy window, each on its own."""
    workdir = tmp / f"profiled-n{nodes}"
    workdir.mkdir()
    await asyncio.to_thread(to.mkdir, parents=True, exist_ok=True)
    out = to / f"orchestrator-{kind}-{nodes}.txt"
    run = await converge_fleet(
        broker.url,
        workdir,
        nodes,
        kind,
        manifests(nodes, ("daemon",)),
        profile_to=out,
        broker_pid=broker.process.pid,
    )
    registration = out.with_name(f"{out.stem}-registration.txt")
    return {
        "run": run,
        "deploy_profile": str(out),
        "registration_profile": str(registration),
        "where": busy_share(out.read_text() if out.exists() else "") or "",
    }


def fleet_size(
    sizes: list[int] | None = None,
    fleet: str = "auto",
    *,
    curve: bool = False,
    profile: int | None = None,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    return asyncio.run(
        fleet_size_async(
            sizes or [2000, 5000, 10000],
            fleet,
            curve=curve,
            profile=profile,
            profile_dir=profile_dir,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="convergence benchmark")
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--fleet", default="auto", help="auto, simulator or lite")
    parser.add_argument("--cases", default="daemon,replicated")
    parser.add_argument("--fleet-size", action="store_true", help="search the largest fleet")
    parser.add_argument(
        "--curve", action="store_true", help="with --fleet-size: run every size, past a miss"
    )
    parser.add_argument(
        "--profile", type=int, help="with --fleet-size: this size once more, profiled"
    )
    parser.add_argument("--profile-dir", type=Path, help="where --profile writes its profiles")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.fleet_size:
        result = fleet_size(
            sizes, args.fleet, curve=args.curve, profile=args.profile, profile_dir=args.profile_dir
        )
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps(measure(sizes, args.fleet, tuple(args.cases.split(","))), indent=2))


if __name__ == "__main__":
    main()
