"""The real simulated fleet under pyinstrument: where the agents' own time goes (issue #17
item 4), sampled from the deploy command to convergence.

Two roles in one module:

* ``python -m bench.fleet_profiled fleet --out prof.txt -- <simulate arguments>`` runs
  ``edgefleet-agent simulate`` exactly as the CLI does, with pyinstrument sampling between
  SIGUSR1 and SIGUSR2 (:class:`~bench.orchestrator_profiled.ProfileWindow`), and writes
  the text profile on SIGUSR2 or exit;
* ``python -m bench.fleet_profiled --nodes 1000 --out prof.txt`` runs one daemon
  convergence (:func:`bench.convergence.converge_fleet`: mosquitto, the unprofiled
  orchestrator, the watcher) with the fleet started in the first role, and prints the
  run's figures. The figures of a profiled run explain, they do not measure: sampling
  slows the fleet; the curve comes from ``bench.convergence --fleet-size``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import converge_run, convergence, fleets
from bench.cpu import describe
from bench.fleet_procs import start_mosquitto
from bench.lite_fleet import raise_fd_limit
from bench.orchestrator_profiled import ProfileWindow


class GcTally:
    """Collections per generation in the deploy window: how many, their wall seconds and
    the collecting thread's CPU seconds (``gc.callbacks``). The wall time of a collection
    on a loaded machine includes the time the process waited for a core; the CPU time
    does not, so the two together say whether the collector's share is real. Collections
    after the window, until the bench's next stop signal (the end of ``--linger``), are
    counted apart (``after_window``; the fleet's own shutdown is not in it): a
    collection put off during the deploy (:func:`~edgefleet_agent.simulate.limits.keep_heap`)
    is paid there, and the report must show it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts = [0, 0, 0]
        self.wall = [0.0, 0.0, 0.0]
        self.cpu = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self.counting = False
        self._began = (0.0, 0.0)
        self._window = (0.0, 0.0)
        self.summary: dict[str, Any] | None = None
        self.after = [0, 0.0, 0]  # collections, CPU s, objects freed after the window
        self.after_told = False
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = (time.perf_counter(), time.thread_time())
        elif self.counting:
            g = int(info["generation"])
            self.counts[g] += 1
            self.wall[g] += time.perf_counter() - self._began[0]
            self.cpu[g] += time.thread_time() - self._began[1]
            self.collected[g] += int(info["collected"])
        elif self.summary is not None:
            self.after[0] += 1
            self.after[1] += time.thread_time() - self._began[1]
            self.after[2] += int(info["collected"])

    def start(self) -> None:
        if not self.counting:
            self.counts, self.wall, self.cpu = [0, 0, 0], [0.0] * 3, [0.0] * 3
            self.collected = [0, 0, 0]
            self._window = (time.perf_counter(), time.process_time())
            self.counting = True

    def stop(self) -> None:
        if self.counting:
            self.counting = False
            wall, cpu = time.perf_counter() - self._window[0], time.process_time() - self._window[1]
            gens = [
                {"generation": g, "collections": self.counts[g], "wall_s": round(self.wall[g], 3),
                 "cpu_s": round(self.cpu[g], 3), "collected": self.collected[g]}
                for g in range(3)
            ]  # fmt: skip
            self.summary = {
                "window_wall_s": round(wall, 3), "process_cpu_s": round(cpu, 3),
                "gc_cpu_s": round(sum(self.cpu), 3), "thresholds": list(gc.get_threshold()),
                "frozen": gc.get_freeze_count(), "generations": gens,
            }  # fmt: skip
            self.out.write_text(json.dumps(self.summary))
        elif self.summary is not None and not self.after_told:
            self.after_told = True  # the bench's second stop: the linger is over
            after = {"collections": self.after[0], "cpu_s": round(self.after[1], 3),
                     "collected": self.after[2]}  # fmt: skip
            self.out.write_text(json.dumps({**self.summary, "after_window": after}))


def _run_fleet(out: Path | None, gc_out: Path | None, simulate_args: list[str]) -> int:
    from edgefleet_agent.cli import main as agent_main

    tally = GcTally(gc_out) if gc_out is not None else None
    window = ProfileWindow(out) if out is not None else None

    def start(*_: Any) -> None:
        if tally is not None:
            tally.start()
        if window is not None:
            window.start()

    def stop(*_: Any) -> None:
        if window is not None:
            window.stop()
        if tally is not None:
            tally.stop()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    try:
        return agent_main(["simulate", *simulate_args])
    finally:  # a window still open at exit ends here; the shutdown never counts as after it
        if window is not None:
            window.stop()
        if tally is not None and tally.counting:
            tally.stop()


def _profiled_start(out: Path | None, gc_out: Path, extra: list[str], source: Path | None) -> Any:
    """``bench.fleets.start_fleet`` with the simulator started in the first role (with
    ``source``: the agent and protocol packages of that checkout, a baseline's)."""
    real_popen = subprocess.Popen

    def start(*args: Any, **kwargs: Any) -> Any:
        def popen(argv: list[str], **kw: Any) -> Any:
            if len(argv) > 1 and argv[1] == "simulate":
                where = ["--gc-out", str(gc_out)]
                where += ["--out", str(out)] if out is not None else []
                argv = [sys.executable, "-m", "bench.fleet_profiled", "fleet", *where,
                        "--", *argv[2:], *extra]  # fmt: skip
                if source is not None:
                    env = dict(kw["env"])
                    paths = [source / "edge-agent", source / "protocol", env["PYTHONPATH"]]
                    kw["env"] = {**env, "PYTHONPATH": os.pathsep.join(map(str, paths))}
            return real_popen(argv, **kw)

        subprocess.Popen = popen  # type: ignore[misc,assignment]
        try:
            return fleets.start_fleet(*args, **kwargs)
        finally:
            subprocess.Popen = real_popen  # type: ignore[misc]

    return start


async def _converge(
    nodes: int, out: Path | None, extra: list[str], source: Path | None, linger_s: float = 0.0
) -> dict[str, Any]:
    raise_fd_limit(nodes * 2 + 1024)
    windows = [0]

    def profile(self: Any, signum: int) -> None:  # the fleet's deploy window only
        windows[0] += 1
        if windows[0] > 2:  # the first window is the registration's
            self.fleet.process.send_signal(signum)
        if windows[0] > 2 and signum == signal.SIGUSR2:
            time.sleep(linger_s)  # the fleet idles on (what it put off is paid now)
            self.fleet.process.send_signal(signum)  # its collections since: after_window

    converge_run.Alive.profile = profile  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="edgefleet-fleetprof-") as tmp:
        gc_out = Path(tmp) / "fleet-gc.json"
        setattr(converge_run, "start_fleet", _profiled_start(out, gc_out, extra, source))  # noqa: B010
        broker = start_mosquitto(Path(tmp) / "broker")
        try:
            workdir = Path(tmp) / "run"
            workdir.mkdir()
            run = await converge_run.converge_fleet(
                broker.url, workdir, nodes, "simulator", convergence.manifests(nodes, ("daemon",)),
                broker_pid=broker.process.pid,
            )  # fmt: skip
            if gc_out.exists():
                run["fleet_gc"] = json.loads(gc_out.read_text())
            return run
        finally:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fleet"]:
        parser = argparse.ArgumentParser(prog="bench.fleet_profiled fleet")
        parser.add_argument("--out", type=Path)
        parser.add_argument("--gc-out", type=Path)
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        args = parser.parse_args(argv[1:])
        rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        return _run_fleet(args.out, args.gc_out, rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="the profile (none: an unprofiled run)")
    parser.add_argument("--simulate-arg", action="append", default=[],
                        help="one more edgefleet-agent simulate argument (repeatable)")  # fmt: skip
    parser.add_argument("--linger", type=float, default=0.0,
                        help="seconds the fleet idles on after the deploy before it "
                        "stops (its collections then: fleet_gc.after_window)")  # fmt: skip
    parser.add_argument("--fleet-source", type=Path,
                        help="run the fleet from this checkout's sources (a baseline)")  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out.resolve() if args.out is not None else None
    source = args.fleet_source.resolve() if args.fleet_source is not None else None
    run = asyncio.run(_converge(args.nodes, out, args.simulate_arg, source, args.linger))
    case = run["cases"][0]
    case.pop("cdf_s", None)
    print(json.dumps(run, indent=2))
    if "cpu_s" in case:
        print(describe(case["cpu_s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
