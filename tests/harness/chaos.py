"""A real fleet to break on purpose: the chaos suite's harness (issue #13).

One mosquitto with persistence on a fixed loopback port (so it can be killed and started
again where clients expect it), the orchestrator as its own process
(``edgefleet orchestrator run``), and real agents (``edgefleet-agent run``, process
runtime) each behind its own :class:`~harness.proxy.Proxy`, so one gateway's link can be
cut and restored. Workloads are ``sleep <marker>`` processes; :func:`census` finds them by
marker and reads who they are from the environment the agent gives them
(``EDGEFLEET_WORKLOAD``, ``EDGEFLEET_NODE``), so a restart is a new (pid, start time), a
duplicate is a name with two processes, and a loss is a name with none.

Used by ``tests/chaos`` and ``bench/reconvergence.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.fleet import Operator
from harness.mosquitto import Mosquitto, dev_config, free_port, start_mosquitto
from harness.proxy import Proxy

BIN = Path(sys.executable).parent
AGENT_FAST = [
    "--reconcile-interval-s", "0.5",
    "--sample-interval-s", "1",
    "--heartbeat-s", "5",
    "--keepalive-s", "5",
    "--log-level", "info",
]  # fmt: skip

Identity = tuple[int, float]
"""A process: (pid, start time) — a pid alone can be reused."""


def persistent_config(port: int, workdir: Path) -> str:
    """The dev config with persistence on, saving often (a kill -9 loses at most 1 s)."""
    base = dev_config(port, workdir).replace("persistence false\n", "")
    text = base + f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
    if os.geteuid() == 0:  # else mosquitto drops to its own user and cannot write here
        text += "user root\n"
    return text


@dataclass
class Census:
    """Every workload process of the fleet's apps: name -> [(node, identity)]."""

    by_name: dict[str, list[tuple[str, Identity]]]

    def names(self) -> set[str]:
        return set(self.by_name)

    def duplicates(self) -> dict[str, int]:
        return {n: len(p) for n, p in self.by_name.items() if len(p) > 1}

    def identities(self, name: str) -> set[Identity]:
        return {ident for _, ident in self.by_name.get(name, [])}

    def node_of(self, name: str) -> set[str]:
        return {node for node, _ in self.by_name.get(name, [])}

    def on(self, node: str) -> set[str]:
        return {n for n, procs in self.by_name.items() if any(p[0] == node for p in procs)}


def census(markers: set[str]) -> Census:
    found: dict[str, list[tuple[str, Identity]]] = {}
    for proc in psutil.process_iter(["cmdline", "status", "create_time"]):
        cmd = proc.info["cmdline"] or []
        if len(cmd) != 2 or cmd[0] != "sleep" or cmd[1] not in markers:
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            env = proc.environ()
            name, node = env.get("EDGEFLEET_WORKLOAD", "?"), env.get("EDGEFLEET_NODE", "?")
            found.setdefault(name, []).append((node, (proc.pid, proc.info["create_time"])))
    return Census(found)


@dataclass(frozen=True)
class Counts:
    """What a fault did to the workloads, compared with the census before it."""

    lost: list[str]
    restarted: list[str]
    duplicates: dict[str, int]
    moved: list[str]


def compare(before: Census, after: Census) -> Counts:
    names = before.names()
    return Counts(
        lost=sorted(names - after.names()),
        restarted=sorted(
            n for n in names & after.names() if before.identities(n) != after.identities(n)
        ),
        duplicates=after.duplicates(),
        moved=sorted(n for n in names & after.names() if before.node_of(n) != after.node_of(n)),
    )


@dataclass
class Agent:
    node: str
    state_dir: Path
    proxy: Proxy
    root: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        log = self.state_dir.parent / f"{self.node}-agent-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "edgefleet-agent"),
                    "run",
                    "--node",
                    self.node,
                    "--site",
                    "chaos",
                    "--broker",
                    f"mqtt://127.0.0.1:{self.proxy.port}",
                    "--root",
                    self.root,
                    "--state-dir",
                    str(self.state_dir),
                    "--runtime",
                    "process",
                    *AGENT_FAST,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class ChaosFleet:
    """The fleet under test; every part can be killed and started again."""

    workdir: Path
    root: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    broker: Mosquitto | None = None
    orchestrator: subprocess.Popen[bytes] | None = None
    orchestrator_starts: int = 0
    agents: list[Agent] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    operator: Operator | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start_broker(self) -> None:
        work = self.workdir / "broker"
        self.broker = start_mosquitto(
            work, config=persistent_config(self.port, work), port=self.port
        )

    def start_orchestrator(self, broker_url: str | None = None) -> None:
        """Start the orchestrator on the broker (or on ``broker_url``: a proxy to cut)."""
        self.orchestrator_starts += 1
        log = self.workdir / f"orchestrator-{self.orchestrator_starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        with open(log, "wb") as out:
            self.orchestrator = subprocess.Popen(
                [
                    str(BIN / "edgefleet"),
                    "orchestrator",
                    "run",
                    "--broker",
                    broker_url or self.url,
                    "--root",
                    self.root,
                    "--data-dir",
                    str(self.workdir / "orchestrator"),
                    "--tick",
                    "0.2",
                    "--client-id",
                    f"orch-{self.root}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill_orchestrator(self) -> None:
        if self.orchestrator is not None and self.orchestrator.poll() is None:
            self.orchestrator.kill()
            self.orchestrator.wait(timeout=10)

    async def add_agents(self, count: int) -> None:
        for i in range(count):
            proxy = Proxy(self.port)
            await proxy.start()
            node = f"gw-{i + 1}"
            state = self.workdir / node / "state"
            state.mkdir(parents=True)
            agent = Agent(node, state, proxy, self.root)
            agent.start()
            self.agents.append(agent)

    async def open_operator(self) -> Operator:
        self.operator = Operator(self.url, self.root)
        await self.operator.__aenter__()
        return self.operator

    def app(self, name: str, **extra: Any) -> dict[str, Any]:
        """A process app whose replicas run ``sleep <marker>``."""
        marker = f"{86400 + uuid.uuid4().int % 100000}.{uuid.uuid4().int % 1000:03d}"
        self.markers.add(marker)
        return {
            "name": name,
            "workload": {
                "runtime": "process",
                "command": ["sleep", marker],
                "resources": {"cpu": 0.1, "memory_mb": 32},
            },
            **extra,
        }

    async def answering(self) -> bool:
        """Whether the orchestrator answers a command (commands are not retained: one sent
        before it subscribed is lost, so callers wait for this first)."""
        assert self.operator is not None
        try:
            await self.operator.call("nodes", timeout_s=1)
        except TimeoutError:
            return False
        return True

    async def deploy(self, *manifests: dict[str, Any]) -> None:
        assert self.operator is not None
        await until(self.answering, 60, "the orchestrator answering commands")
        for manifest in manifests:
            reply = await self.operator.call("deploy", manifest=manifest, timeout_s=20)
            assert reply["ok"], reply

    def census(self) -> Census:
        return census(self.markers)

    async def view_correct(self, expected: Census) -> bool:
        """The orchestrator's view, asked live, matches the fleet: every node online, every
        app healthy with all it wants running; and the processes are exactly the expected
        names, once each."""
        assert self.operator is not None
        try:
            nodes = await self.operator.call("nodes", timeout_s=2)
            apps = await self.operator.call("apps", timeout_s=2)
        except TimeoutError:
            return False  # the orchestrator or the broker is not back yet
        rows = nodes.get("result", {}).get("nodes", [])
        if len(rows) != len(self.agents) or any(r["state"] != "online" for r in rows):
            return False
        app_rows = apps.get("result", {}).get("apps", [])
        if not app_rows or any(
            a["state"] != "healthy" or a["running"] != a["desired"] for a in app_rows
        ):
            return False
        now = self.census()
        return now.names() == expected.names() and not now.duplicates()

    async def stop(self) -> None:
        if self.operator is not None:
            with contextlib.suppress(Exception):
                await self.operator.__aexit__(None, None, None)
        for agent in self.agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.proc.send_signal(signal.SIGTERM)
        for agent in self.agents:
            if agent.proc is not None:
                try:
                    agent.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.kill9()
            await agent.proxy.close()
        self.kill_orchestrator()
        if self.broker is not None:
            self.broker.kill()
        for name, procs in census(self.markers).by_name.items():
            for _, (pid, _) in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            del name


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took (a deadline, never a fixed sleep)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s")
