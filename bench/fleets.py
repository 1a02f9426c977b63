"""How a benchmark starts a simulated fleet: the real simulator, or the lite fleet.

``simulator``: ``edgefleet-agent simulate`` — real agents (real protocol code, simulated
runtime), many in one process. ``lite``: :mod:`bench.lite_fleet` — protocol-level fake
nodes on a minimal MQTT client, cheap enough for 10,000 nodes in one process.

:func:`choose` prefers the simulator when it is installed and asked for ("auto"); every
result names the fleet that ran, so figures from the two are never mixed up.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from bench.fleet_procs import BIN, REPO, BenchError, child_pythonpath

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


class RunningFleet:
    """A fleet child process; a thread reads its JSON lines (ready, faults, stopped) so
    it can never block on a full stdout pipe."""

    def __init__(self, kind: FleetKind, count: int, process: subprocess.Popen[bytes], log: Path):
        self.kind, self.count, self.process, self.log = kind, count, process, log
        self.lines: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
                self.lines.append(body)
                if "ready" in body:
                    self.ready.set()

    def wait_ready(self, timeout_s: float) -> float | None:
        """Block until the fleet's ready line; returns the connect seconds it reported."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.2):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the {self.kind} fleet of {self.count} did not connect within {timeout_s} s"
                )
        ready = next(line for line in self.lines if "ready" in line)
        return float(ready["connect_s"]) if "connect_s" in ready else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

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
    env = {**os.environ, "PYTHONPATH": child_pythonpath()}
    with open(log, "wb") as err:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
        )
    return RunningFleet(kind, count, process, log)
