"""Shared plumbing for benchmarks that run the real processes: a broker, the orchestrator,
agents, a status watcher and an operator connection.

Benchmarks fail with a message, never with a figure, when something cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness.fleet import Watcher as _HarnessWatcher  # noqa: E402
from harness.mosquitto import Mosquitto, free_port, start_mosquitto  # noqa: E402

BIN = Path(sys.executable).parent

__all__ = [
    "BIN",
    "BenchError",
    "Mosquitto",
    "Operator",
    "Processes",
    "Watcher",
    "child_pythonpath",
    "free_port",
    "start_mosquitto",
]


def child_pythonpath() -> str:
    """The repository (for ``python -m bench.…`` children) before any PYTHONPATH already
    set: a bench run from a snapshot of the tree can put the snapshot's packages first."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


class BenchError(RuntimeError):
    """A benchmark could not run; the message says why."""


class Processes:
    """Subprocesses started by a benchmark, stopped (TERM, then KILL) on close."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": child_pythonpath()}  # for `python -m bench.…` children
        with open(self.workdir / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        self.procs[name] = proc
        return proc

    def orchestrator(
        self,
        url: str,
        root: str,
        *,
        tick_s: float = 0.2,
        profile_to: Path | None = None,
        profile_windows: str = "combined",
        metrics_addr: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """``edgefleet orchestrator run``; with ``profile_to``, the same service under
        pyinstrument (:mod:`bench.orchestrator_profiled`), its profile written there on stop
        (``profile_windows="separate"``: each SIGUSR1..SIGUSR2 window on its own). With
        ``metrics_addr`` (not profiled) it serves Prometheus metrics there."""
        if profile_to is not None:
            return self.spawn(
                "orchestrator",
                [sys.executable, "-m", "bench.orchestrator_profiled", "--broker", url,
                 "--root", root, "--data-dir", str(self.workdir / "orch"),
                 "--tick", str(tick_s), "--out", str(profile_to),
                 "--windows", profile_windows],
            )  # fmt: skip
        metrics = ["--metrics-addr", metrics_addr] if metrics_addr else []
        return self.spawn(
            "orchestrator",
            [
                str(BIN / "edgefleet"),
                "orchestrator",
                "run",
                "--broker",
                url,
                "--root",
                root,
                "--data-dir",
                str(self.workdir / "orch"),
                "--tick",
                str(tick_s),
                "--client-id",  # unique: two benchmark fleets may share one broker
                f"bench-orch-{uuid.uuid4().hex[:8]}",
                *metrics,
            ],
        )

    def agent(
        self, url: str, root: str, node: str, site: str, *extra: str
    ) -> subprocess.Popen[bytes]:
        return self.spawn(
            node,
            [
                str(BIN / "edgefleet-agent"),
                "run",
                "--node",
                node,
                "--site",
                site,
                "--broker",
                url,
                "--root",
                root,
                "--runtime",
                "simulated",
                "--state-dir",
                str(self.workdir / node),
                *extra,
            ],
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)


class Watcher(_HarnessWatcher):
    """The tests' status watcher; a broker it cannot reach is a :class:`BenchError`, so the
    benchmark fails with a message instead of a figure."""

    async def start(self) -> None:
        try:
            await super().start()
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None


class Operator:
    """Sends commands and awaits replies; retries while the orchestrator is not listening."""

    def __init__(self, url: str, root: str) -> None:
        self.root = root
        self.inbox = f"{root}/replies/bench"
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"bench-op-{uuid.uuid4().hex[:6]}",
            subscriptions=[f"{self.inbox}/#"],
        )

    async def __aenter__(self) -> Operator:
        self.session.start()
        if not await self.session.wait_connected(5):
            raise BenchError("cannot reach the broker")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def call(
        self, verb: str, *, attempts: int = 30, timeout_s: float = 1.0, **args: Any
    ) -> dict[str, Any]:
        for _ in range(attempts):
            rid = uuid.uuid4().hex
            body = {"v": 1, "request_id": rid, "reply_to": f"{self.inbox}/{rid}", **args}
            await self.session.publish(
                Publication(topic=f"{self.root}/commands/{verb}", payload=json.dumps(body).encode())
            )
            try:
                async with asyncio.timeout(timeout_s):
                    async for msg in self.session.messages():
                        if msg.topic.endswith(rid):
                            reply: dict[str, Any] = json.loads(msg.payload)
                            return reply
            except TimeoutError:
                continue
        raise BenchError(f"the orchestrator did not answer {verb!r} (is it running?)")


async def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.01)
    raise BenchError(f"timed out after {timeout_s} s waiting for {what}")
