"""Real agents in this event loop: the whole ``Agent`` (sessions, converge, guards, the
process runtime) per gateway, without a Python interpreter per gateway, so a test can run
twenty of them on a loaded 2-core machine. Their workloads are real processes; the test
finds them by the ``EDGEFLEET_TEST_MARK`` value in their environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from edgefleet_agent.service.assembly import prepare
from edgefleet_agent.settings import AgentSettings
from edgefleet_protocol.broker import BrokerSettings

MARK_ENV = "EDGEFLEET_TEST_MARK"
VERSION_ENV = "EDGEFLEET_TEST_VERSION"
METRICS_ENV = "EDGEFLEET_METRICS_FILE"


@dataclass(frozen=True)
class Gateway:
    node: str
    site: str
    region: str = "eu"


@dataclass(frozen=True)
class Workload:
    pid: int
    version: str
    replica: str
    started: float


def workloads(mark: str) -> list[Workload]:
    """The live workload processes carrying ``mark``, with their version and replica (the
    replica from the metrics file the agent gives each workload: ``.../<replica>.json``)."""
    found = []
    for p in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            env = p.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if env.get(MARK_ENV) != mark:
            continue
        replica = Path(env.get(METRICS_ENV, "unknown")).stem
        found.append(Workload(p.pid, env.get(VERSION_ENV, "?"), replica, p.info["create_time"]))
    return found


def kill_marked(mark: str) -> None:
    for w in workloads(mark):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(w.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(w.pid, signal.SIGKILL)


@asynccontextmanager
async def running_agents(
    url: str, root: str, state_root: Path, gateways: Sequence[Gateway]
) -> AsyncIterator[None]:
    """Start one real agent per gateway (process runtime, test-fast timings); stop them
    all on exit (their workloads keep running, as with a real agent: the caller kills
    them by mark)."""
    stop = asyncio.Event()
    tasks = []
    for g in gateways:
        settings = AgentSettings(
            node=g.node,
            site=g.site,
            region=g.region,
            broker=BrokerSettings.from_url(url),
            state_dir=state_root / g.node,
            runtime="process",
            root=root,
            heartbeat_s=5.0,
            keepalive_s=5,
            sample_interval_s=2.0,
            probe_interval_s=30.0,
            reconcile_interval_s=0.5,
            log_level="warning",
            workload_user="-",  # workloads from root-only temp dirs run as the agent
        )
        agent = prepare(settings).build()
        tasks.append(asyncio.create_task(agent.run(stop), name=f"agent-{g.node}"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=20)
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
