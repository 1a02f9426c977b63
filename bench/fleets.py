"""How a benchmark starts a simulated fleet: the real simulator, or the lite fleet.

``simulator``: ``edgefleet-agent simulate`` — real agents (real protocol code, simulated
runtime), many in one process. ``lite``: :mod:`bench.lite_fleet` — protocol-level fake
nodes on a minimal MQTT client, cheap enough for 10,000 nodes in one process.

:func:`choose` prefers the simulator when it is installed and asked for ("auto"); every
result names the fleet that ran, so figures from the two are never mixed up.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.fleet_procs import BIN, REPO, BenchError

FleetKind = Literal["simulator", "lite"]


def simulator_available() -> bool:
    """Whether ``edgefleet-agent simulate`` exists here (its ``--help`` exits 0)."""
    agent = BIN / "edgefleet-agent"
    if not agent.exists():
        return False
    try:
        done = subprocess.run(
            [str(agent), "simulate", "--help"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "--count" in done.stdout


def choose(wanted: str) -> FleetKind:
    """``auto``: the simulator when available, else lite; or exactly what was asked."""
    if wanted == "lite":
        return "lite"
    if wanted == "simulator":
        if not simulator_available():
            raise BenchError("asked for the simulator, but `edgefleet-agent simulate` is missing")
        return "simulator"
    if wanted != "auto":
        raise BenchError(f"unknown fleet kind {wanted!r} (auto, simulator or lite)")
    return "simulator" if simulator_available() else "lite"


@dataclass
class RunningFleet:
    kind: FleetKind
    count: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(f"the {self.kind} fleet exited with {code}: {tail.strip()}")


def start_fleet(
    kind: FleetKind, url: str, root: str, count: int, *, sites: int, workdir: Path, seed: int = 0
) -> RunningFleet:
    """Start ``count`` nodes in one child process; returns without waiting for them."""
    log = workdir / f"fleet-{kind}-{count}.log"
    if kind == "lite":
        args = [sys.executable, "-m", "bench.lite_fleet"]
        args += ["--broker", url, "--root", root, "--count", str(count), "--sites", str(sites)]
    else:
        args = [str(BIN / "edgefleet-agent"), "simulate", "--broker", url, "--root", root]
        args += ["--count", str(count), "--sites", str(sites), "--seed", str(seed)]
        args += ["--profiles", str(REPO / "device-profiles")]
        args += ["--state-dir", str(workdir / f"sim-{count}")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as err:
        # Only the lite fleet's stdout is read (its ready line); the simulator's goes to the
        # log, so a chatty child can never block on a full pipe.
        out = subprocess.PIPE if kind == "lite" else err
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env, start_new_session=True)
    return RunningFleet(kind, count, process, log)


def wait_lite_ready(fleet: RunningFleet, timeout_s: float) -> float:
    """Block until the lite fleet prints its ready line; returns its connect seconds."""
    assert fleet.process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fleet.check_alive()
        ready, _, _ = select.select([fleet.process.stdout], [], [], 0.2)
        if ready:
            line = fleet.process.stdout.readline()
            if line:
                body = json.loads(line)
                if "ready" in body:
                    return float(body["connect_s"])
    raise BenchError(f"the lite fleet of {fleet.count} did not connect within {timeout_s} s")
