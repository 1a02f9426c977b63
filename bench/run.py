"""`make bench`: run every scenario, record figures beside their targets and the machine.

Writes ``bench/results/<date>-<host>.json`` and a markdown summary beside it. Each scenario
measures on this machine in this run; a scenario that cannot run records its error (and
the run exits non-zero) rather than a figure.

``BENCH_SCALE=full`` runs the large sizes; the default finishes in a few minutes on 2 cores.
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

RESULTS = Path(__file__).resolve().parent / "results"


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
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def scenarios(full: bool) -> dict[str, Callable[[], dict[str, Any]]]:
    from bench import failover, placement

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "placement_1000x1000": lambda: _target(placement.measure(1000, 1000), "seconds", "<=", 1.0),
        "placement_1000x10000": lambda: _target(
            placement.measure(1000, 10000, repeat=1), "placements_per_s", ">=", 10_000
        ),
        "failover": lambda: failover.measure([0.0, 30.0] if full else [0.0, 5.0]),
    }
    try:
        from bench import agent_footprint
    except ImportError:
        pass
    else:
        runs["agent_footprint"] = lambda: agent_footprint.measure(seconds=60 if full else 30)
    return runs


def _target(result: dict[str, Any], key: str, op: str, target: float) -> dict[str, Any]:
    value = float(result[key])
    met = value <= target if op == "<=" else value >= target
    return {**result, "target": {"figure": key, "op": op, "value": target, "met": met}}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# edgefleet benchmarks — {m['date']} on {m['host']}",
        "",
        f"{m['cores']} cores ({m['cpu_model']}), {m['memory_mb']} MB, Python {m['python']},"
        f" {m['mosquitto']}.",
        "",
        "| scenario | figure | target | met |",
        "|---|---|---|---|",
    ]
    for name, result in report["scenarios"].items():
        if "error" in result:
            lines.append(f"| {name} | **failed**: {result['error']} | | no |")
            continue
        target = result.get("target")
        if target:
            lines.append(
                f"| {name} | {target['figure']} = {result[target['figure']]} |"
                f" {target['op']} {target['value']} | {'yes' if target['met'] else '**no**'} |"
            )
        for run in result.get("runs", []):
            lines.append(
                f"| {name} (grace {run['grace_s']} s) | kill→replaced {run['replaced_s']} s,"
                f" beyond grace after notice {run['over_grace_s']} s |"
                f" ≤ grace + {run['target_over_grace_s']} s | {'yes' if run['met'] else '**no**'} |"
            )
        for row in result.get("rows", []):
            lines.append(
                f"| {name} ({row['case']}) | {row['figure']} | {row['target']} |"
                f" {'yes' if row['met'] else '**no**'} |"
            )
    lines += ["", "Raw figures: the JSON file beside this one."]
    return "\n".join(lines) + "\n"


def main() -> int:
    full = os.environ.get("BENCH_SCALE", "").lower() == "full"
    only = set(sys.argv[1:])
    report: dict[str, Any] = {
        "machine": machine(),
        "scale": "full" if full else "default",
        "scenarios": {},
    }
    failed = False
    for name, run in scenarios(full).items():
        if only and name not in only:
            continue
        print(f"bench: {name} ...", flush=True)
        started = time.monotonic()
        try:
            result = run()
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        result["wall_s"] = round(time.monotonic() - started, 1)
        report["scenarios"][name] = result
        print(json.dumps(result, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{report['machine']['host']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(f"bench: wrote {RESULTS / stem}.json and .md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
