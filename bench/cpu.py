"""CPU seconds per process over a window: which process a convergence run waited on.

On a 2-core machine the broker, the orchestrator, the fleet and the bench's own watcher
share two cores; a figure alone cannot say which of them made a deploy slow. Sampling each
process's CPU time at the start and end of the window can: a process near 100 % of the
wall time was the bottleneck (or starved the others).
"""

from __future__ import annotations

import os
import time

import psutil


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._procs.setdefault("bench watcher", psutil.Process(os.getpid()))
        self._start: dict[str, float] = {}
        self._wall = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def start(self) -> None:
        self._wall = time.monotonic()
        self._start = {name: self._cpu(p) for name, p in self._procs.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds of each process since :meth:`start`, and ``wall_s``."""
        used = {
            name: round(self._cpu(p) - self._start.get(name, 0.0), 3)
            for name, p in self._procs.items()
        }
        return {**used, "wall_s": round(time.monotonic() - self._wall, 3)}


def describe(cpu: dict[str, float]) -> str:
    """``"fleet 6.1 s (85 %), orchestrator 2.0 s (28 %), ... of 7.2 s"``, busiest first."""
    wall = cpu.get("wall_s", 0.0)
    parts = sorted(((v, k) for k, v in cpu.items() if k != "wall_s"), reverse=True)
    shown = ", ".join(f"{k} {v:.1f} s ({v / wall:.0%})" for v, k in parts if wall > 0)
    return f"CPU during the {wall:.1f} s window: {shown}"
