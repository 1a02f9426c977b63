"""`make bench`: run every scenario, record figures beside their targets and the machine.

Writes ``bench/results/<date>-<host>.json``, a markdown summary and PNG plots beside it
(``BENCH_OUT=DIR`` writes elsewhere). Each scenario measures on this machine in this run,
baselines included; a scenario that cannot run records its error — never a figure — and
the run exits non-zero.

``BENCH_SCALE=full`` runs the large sizes; the default finishes within 15 minutes on 2
cores. ``python -m bench.run convergence ingest`` runs only the named scenarios.
``BENCH_SCALE=smoke`` runs tiny sizes of everything (the test suite's smoke run).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import report, stats

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = ("smoke", "default", "full")


def machine() -> dict[str, Any]:
    try:
        out = subprocess.run(
            ["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True, timeout=5
        ).stdout
        mosquitto = out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        mosquitto = "not installed"
    return {
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "memory_mb": psutil.virtual_memory().total // (1024 * 1024),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mosquitto": mosquitto,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_start": load(),
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


Scenario = Callable[[], dict[str, Any]]


def scenarios(scale: str) -> dict[str, Scenario]:
    """Every scenario at the given scale, in the order they run."""
    from bench import (
        agent_footprint,
        convergence,
        failover,
        fleets,
        ingest,
        outbound,
        reconvergence,
        throughput,
    )
    from bench import quality as placement_quality

    full, smoke = scale == "full", scale == "smoke"
    grace = failover.DEFAULT_GRACE_S
    sizes = [5, 10] if smoke else [100, 300, 1000]
    # With the simulator (real agents) the figures include the agents' own cost; the lite
    # fleet (protocol-level nodes) shows the control plane alone. Both run when both exist.
    runs: dict[str, Scenario] = {
        "placement_throughput": lambda: throughput.measure(smoke=smoke),
        "placement_quality": lambda: placement_quality.measure(
            per_family=1 if smoke else 10 if full else 5
        ),
        "convergence": lambda: convergence.measure(sizes, fleet="auto", profile=not smoke),
        "convergence_lite": lambda: convergence.measure(sizes, fleet="lite", profile=not smoke),
        # The curve (#17): 1,000 / 2,000 / 5,000 real simulated gateways, the lite
        # fleet up to 10,000; every size runs, past a miss too.
        "fleet_size": lambda: convergence.fleet_size(
            [20] if smoke else [1000, 2000, 5000], fleet="auto", curve=not smoke
        ),
        "fleet_size_lite": lambda: convergence.fleet_size(
            [20] if smoke else [1000, 2000, 5000, 10000], fleet="lite", curve=not smoke
        ),
        "failover": lambda: failover.measure(
            [("kill", 0.0), ("cut", 0.0)]
            if smoke
            else [("kill", 0.0), ("cut", 0.0), ("kill", grace), ("cut", grace)],
            agents=2 if smoke else 6,
            concurrent=smoke,
        ),
        "reconvergence": lambda: reconvergence.measure(
            ("agent return",) if smoke else reconvergence.FAULTS, agents=2 if smoke else 4
        ),
        "ingest": lambda: ingest.measure(
            nodes=50 if smoke else 1000,
            window_s=1.5 if smoke else 10.0 if full else 6.0,
            probe_s=0.6 if smoke else 1.5,
            profile=not smoke,
            concurrent=smoke,
            rounds=1 if smoke else 3,
        ),
        "outbound": lambda: outbound.scenario(
            documents=200 if smoke else 10_000, rounds=1 if smoke else 3
        ),
        "agent_footprint": lambda: footprint_rows(
            agent_footprint.measure(
                **(
                    {"seconds": 2.0, "workload_counts": (0,), "warm_up_s": 1.0, "min_window_s": 2.0}
                    if smoke
                    else {"seconds": 60.0 if full else 30.0}
                )
            )
        ),
    }
    if smoke or not fleets.simulator_available():
        # Without the simulator "auto" is the lite fleet already; a smoke run needs each
        # code path once, not twice.
        del runs["convergence_lite"], runs["fleet_size_lite"]
    return runs


def footprint_rows(result: dict[str, Any]) -> dict[str, Any]:
    """bench.agent_footprint writes rows as text (``"rss_mb = 31.2"``, ``"<= 45.0"``); the
    summary wants them in :func:`bench.stats.row` form, numbers apart."""
    rows = []
    for old in result["rows"]:
        figure, _, value = old["figure"].partition(" = ")
        op, _, target = old["target"].partition(" ")
        if op in ("<=", ">="):
            rows.append(stats.row(old["case"], figure, float(value), op, float(target)))
        else:
            rows.append(stats.row(old["case"], figure, float(value)))
    out = {**result, "rows": rows, "rows_as_written": result["rows"]}
    missed = [c for c in result.get("cases", []) if _footprint_missed(c, rows)]
    if missed:
        out["where"] = "What the agent sent in the window (count and payload bytes per kind): " + (
            "; ".join(f"{c['workloads']} workloads: {json.dumps(c['messages'])}" for c in missed)
        )
    return out


def _footprint_missed(case: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    label = f"{case['workloads']} workloads"
    return any(r["case"] == label and r["met"] is False for r in rows)


def run_all(scale: str, only: set[str], out_dir: Path) -> tuple[dict[str, Any], Path]:
    started = time.monotonic()
    facts: dict[str, Any] = {"machine": machine(), "scale": scale, "scenarios": {}}
    for name, run in scenarios(scale).items():
        if only and name not in only:
            continue
        print(f"bench: {name} ...", flush=True)
        before = time.monotonic()
        loadavg = load()
        try:
            result = run()
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["wall_s"] = round(time.monotonic() - before, 1)
        result["load"] = loadavg
        facts["scenarios"][name] = result
        rows = result.get("rows", [])
        print(f"bench: {name}: {result['wall_s']} s, {len(rows)} figures", flush=True)
        for row in rows:
            print(f"  {row['case']}: {row['figure']} = {row['value']}", flush=True)
    facts["wall_s"] = round(time.monotonic() - started, 1)
    facts["load_end"] = load()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{dt.date.today().isoformat()}-{facts['machine']['host']}"
    plots = report.plot_all(facts, stem)
    facts["plots"] = plots
    stem.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.markdown(facts, plots))
    return facts, stem


def main(argv: list[str] | None = None) -> int:
    scale = os.environ.get("BENCH_SCALE", "default").lower() or "default"
    if scale not in SCALES:
        print(f"bench: BENCH_SCALE must be one of {', '.join(SCALES)}, got {scale!r}")
        return 2
    only = set(sys.argv[1:] if argv is None else argv)
    unknown = only - set(scenarios(scale))
    if unknown:
        print(
            f"bench: unknown scenario {sorted(unknown)[0]!r}; known: {', '.join(scenarios(scale))}"
        )
        return 2
    out_dir = Path(os.environ.get("BENCH_OUT", RESULTS))
    facts, stem = run_all(scale, only, out_dir)
    print(f"bench: wrote {stem}.json, {stem}.md and {len(facts['plots'])} plots")
    failed = [name for name, r in facts["scenarios"].items() if "error" in r]
    if failed:
        print(f"bench: failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
