"""The orchestrator service under pyinstrument, for "where does the time go" excerpts.

Runs the same :class:`~edgefleet_orchestrator.service.orchestrator.Orchestrator` that ``edgefleet
orchestrator run`` runs (same config defaults, same tick), and samples its stacks between
SIGUSR1 and SIGUSR2 (or exit), then writes the profile as text to ``--out``. Used only to
explain a missed target: figures always come from the unprofiled CLI process.

    python -m bench.orchestrator_profiled --broker URL --root R --data-dir D --out prof.txt
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from edgefleet_orchestrator.service import collector
from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_protocol.broker import BrokerSettings
from pyinstrument import Profiler

PROFILE_INTERVAL_S = 0.001


def profile_text(profiler: Profiler, flat_lines: int = 30) -> str:
    """Plain-text call tree (no colour), then the functions with the most self time: the
    tree hides library frames (aiomqtt, paho, asyncio), the flat list does not."""
    tree = str(profiler.output_text(unicode=False, color=False, show_all=False))
    return tree + "\nSelf time, top functions:\n" + "\n".join(self_times(profiler)[:flat_lines])


def self_times(profiler: Profiler) -> list[str]:
    """``"1.234 function  file.py"`` per function, most self time first, summed over every
    place it was sampled (recursion and many callers included)."""
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    totals: dict[tuple[str, str], float] = {}
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:
            continue
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        key = (name, frame.file_path_short or "")
        totals[key] = totals.get(key, 0.0) + frame.total_self_time
    ordered = sorted(totals.items(), key=lambda kv: -kv[1])
    return [f"{secs:.3f} {func}  {path}" for (func, path), secs in ordered if secs >= 0.001]


def busy_share(profile: str) -> str | None:
    """ "The orchestrator was on the CPU 3.3 s of the 8.4 s sampled (39 %)": whether the
    orchestrator itself was the bottleneck, or waited on the broker, fleet or machine."""
    found = re.search(r"Duration: ([\d.]+)\s+CPU time: ([\d.]+)", profile)
    if found is None or float(found.group(1)) <= 0:
        return None
    wall, cpu = float(found.group(1)), float(found.group(2))
    return (
        f"The profiled orchestrator was on the CPU {cpu:.1f} s of the {wall:.1f} s sampled"
        f" ({cpu / wall:.0%}); the rest of the time it waited on the broker, the fleet and"
        " the other processes sharing this machine's cores."
    )


def share_of(profile: str, function: str) -> tuple[float, float] | None:
    """Seconds the profile's call tree spent in ``function`` (its first, outermost
    line), and the seconds sampled in all."""
    own = re.search(rf"([\d.]+) {re.escape(function)}\b", profile)
    total = re.search(r"Duration: ([\d.]+)", profile)
    if own is None or total is None:
        return None
    return float(own.group(1)), float(total.group(1))


class GcClock:
    """Seconds spent in garbage collection per generation (``gc.callbacks``), while
    counting: a sampling profiler charges a collection to whatever line happened to
    allocate when it began, so the profile alone cannot show it."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self.counting = False
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self.counting:
            generation = int(info["generation"])
            self.seconds[generation] += time.perf_counter() - self._began
            self.counts[generation] += 1

    def start(self) -> None:
        self.seconds, self.counts, self.counting = [0.0, 0.0, 0.0], [0, 0, 0], True

    def summary(self) -> str:
        self.counting = False
        parts = ", ".join(f"gen{g} {self.seconds[g]:.3f} s in {self.counts[g]}" for g in range(3))
        return f"Garbage collection: {sum(self.seconds):.3f} s ({parts})"


class ProfileWindow:
    """SIGUSR1 starts sampling, SIGUSR2 stops it and writes the profile: the bench brackets
    exactly the interval it explains (e.g. deploy to converged), not the start-up. Windows
    add up in one profile, or with ``separate`` each stop writes only its own window (the
    bench moves the file away before the next one)."""

    def __init__(self, out: Path, *, separate: bool = False) -> None:
        self.out = out
        self.separate = separate
        self.profiler = self._new()
        self.gc = GcClock()

    @staticmethod
    def _new() -> Profiler:
        return Profiler(interval=PROFILE_INTERVAL_S, async_mode="disabled")

    def start(self) -> None:
        if not self.profiler.is_running:
            self.gc.start()
            self.profiler.start()

    def stop(self) -> None:
        if self.profiler.is_running:
            self.profiler.stop()
            self.out.write_text(self.gc.summary() + "\n" + profile_text(self.profiler))
            if self.separate:
                self.profiler = self._new()


async def _serve(config: OrchestratorConfig, window: ProfileWindow) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, window.start)
    loop.add_signal_handler(signal.SIGUSR2, window.stop)
    orchestrator = Orchestrator(config)
    collector.tune()  # as `edgefleet orchestrator run` does
    await orchestrator.run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--tick", type=float, default=0.2)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--windows", choices=("combined", "separate"), default="combined")
    args = parser.parse_args(argv)
    config = OrchestratorConfig(
        broker=BrokerSettings.from_url(args.broker),
        data_dir=args.data_dir,
        root=args.root,
        tick_s=args.tick,
        client_id=f"bench-orch-prof-{uuid.uuid4().hex[:8]}",
    )
    window = ProfileWindow(args.out, separate=args.windows == "separate")
    try:
        asyncio.run(_serve(config, window))
    finally:
        window.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
