"""One convergence run: start a fleet, wait until the orchestrator has registered it, deploy.

Used by :mod:`bench.convergence` (its scenarios and the fleet-size curve). Two phases,
each measured on its own:

- **Registration** (the connect storm): from the fleet's start until the orchestrator's
  fleet summary (the documented ``fleet/summary`` topic an operator watches) counts every
  node online. Each node sends its status before its capabilities, and the orchestrator
  handles one node's messages in arrival order, so by then every node has also been
  described (checked: the orchestrator's own counters of handled messages, read from its
  Prometheus endpoint at that moment, are recorded with the phase). ``registered_s`` and
  the CPU each process used meanwhile are figures of their own: a slow digest of the
  storm is latency an operator sees, never hidden by deploying later.
- **Deploy** (:func:`deploy_case`): from the deploy command, sent as soon as the fleet is
  registered, to every replica reported running.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench import stats
from bench.cpu import CpuMeter
from bench.fleet_procs import BenchError, Operator, Processes, Watcher, free_port, wait_for
from bench.fleets import FleetKind, RunningFleet, start_fleet

WORKLOAD = {"runtime": "simulated", "resources": {"cpu": 0.01, "memory_mb": 8}}


class Alive:
    """Raises with the child's own words as soon as the orchestrator or fleet exits."""

    def __init__(
        self, procs: Processes, fleet: RunningFleet, *, profiled: bool, broker_pid: int | None
    ) -> None:
        self.procs, self.fleet, self.profiled = procs, fleet, profiled
        self.pids = {"orchestrator": procs.procs["orchestrator"].pid, "fleet": fleet.process.pid}
        if broker_pid is not None:
            self.pids["broker"] = broker_pid

    def profile(self, signum: int) -> None:
        """Start (SIGUSR1) or stop (SIGUSR2) a profiled orchestrator's sampling window."""
        if self.profiled:
            self.procs.procs["orchestrator"].send_signal(signum)

    def check(self) -> None:
        self.fleet.check_alive()
        orch = self.procs.procs["orchestrator"]
        if orch.poll() is not None:
            log = (self.procs.workdir / "orchestrator.log").read_text(errors="replace")
            raise BenchError(f"the orchestrator exited with {orch.returncode}: {log[-2000:]}")


def handled_by_kind(metrics_addr: str | None) -> dict[str, int]:
    """The orchestrator's ``edgefleet_messages_received_total`` by topic kind (empty when
    it serves no metrics, e.g. under the profiler)."""
    if metrics_addr is None:
        return {}
    try:
        with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    pattern = r'^edgefleet_messages_received_total\{kind="([a-z-]+)"\} ([0-9.e+]+)$'
    return {m[1]: int(float(m[2])) for m in re.finditer(pattern, text, re.MULTILINE)}


async def deploy_case(
    watcher: Watcher, op: Operator, root: str, case: tuple[str, dict[str, Any], int], alive: Alive
) -> dict[str, Any]:
    name, manifest, expected = case
    app = manifest["name"]
    status_topic = f"{root}/apps/{app}/status"
    first: dict[str, float] = {}
    ordered: dict[str, float] = {}  # replica -> its desired document seen on the wire
    status_done: list[float] = []

    def hook(topic: str, body: dict[str, Any]) -> None:
        now = time.monotonic()
        if topic.endswith("/desired"):
            for workload in body.get("workloads", []):
                if workload.get("app") == app:
                    ordered.setdefault(workload["name"], now)
        elif topic.endswith("/reported"):
            for replica, report in body.get("workloads", {}).items():
                if report.get("app") == app and report.get("state") == "running":
                    first.setdefault(replica, now)
        elif (
            topic == status_topic
            and not status_done
            and body.get("running") == expected
            and body.get("desired") == expected
        ):
            status_done.append(now)

    watcher.hooks.append(hook)
    alive.profile(signal.SIGUSR1)
    meter = CpuMeter(alive.pids)
    meter.start()
    try:
        sent = time.monotonic()
        reply = await op.call("deploy", attempts=3, timeout_s=15.0, manifest=manifest)
        if not reply.get("ok"):
            raise BenchError(f"deploy of {app} refused: {reply}")
        limit = 60.0 + expected / 100

        def done() -> bool:
            alive.check()
            return len(first) >= expected

        try:
            await wait_for(done, limit, f"{expected} replicas of {app} running")
        except BenchError:
            if len(first) == 0:
                raise
            return {"case": name, "replicas": expected, "running": len(first), "timeout_s": limit}
        await wait_for(lambda: bool(status_done), 30, f"app status of {app} counting all")
        cpu = meter.stop()
    finally:
        watcher.hooks.remove(hook)
        alive.profile(signal.SIGUSR2)
    latencies = [t - sent for t in first.values()]
    # Split each replica's time: until its desired document was out (the orchestrator:
    # command, pass, store, publish), and from there until reported running (broker,
    # agent, and the report's way back).
    out = [ordered[r] - sent for r in first if r in ordered]
    answered = [first[r] - ordered[r] for r in first if r in ordered]
    split = {}
    if out:
        split = {
            "desired_out_p50_s": round(stats.percentile(out, 50), 3),
            "desired_out_p99_s": round(stats.percentile(out, 99), 3),
            "answered_p50_s": round(stats.percentile(answered, 50), 3),
            "answered_p99_s": round(stats.percentile(answered, 99), 3),
        }
    return {
        "case": name,
        "replicas": expected,
        "running": len(first),
        **stats.summarize(latencies),
        **split,
        "total_s": round(max(latencies), 3),
        "status_s": round(status_done[0] - sent, 3),
        "cpu_s": cpu,
        "cdf_s": stats.cdf_points(latencies),
    }


async def _registered(
    watcher: Watcher, summary_topic: str, nodes: int, alive: Alive, fleet: RunningFleet
) -> dict[str, Any]:
    """Wait until the fleet summary counts every node online: the registration phase."""
    started = time.monotonic()
    meter = CpuMeter(alive.pids)
    meter.start()
    connect_s = await asyncio.to_thread(fleet.wait_ready, 60 + nodes / 50)

    def all_online() -> bool:
        alive.check()
        return int(watcher.latest.get(summary_topic, {}).get("nodes_online", 0)) >= nodes

    await wait_for(all_online, 60 + nodes / 50, f"{nodes} nodes online in the fleet summary")
    return {
        "connect_s": connect_s,
        "registered_s": round(time.monotonic() - started, 2),
        "registration_cpu_s": meter.stop(),
    }


async def converge_fleet(
    url: str,
    workdir: Path,
    nodes: int,
    kind: FleetKind,
    cases: list[tuple[str, dict[str, Any], int]],
    *,
    profile_to: Path | None = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """One fleet of ``nodes``: start it, wait until the orchestrator has registered it,
    run the cases. With ``profile_to`` the orchestrator runs under pyinstrument (figures
    then explain, not measure): the registration window's profile is written beside it
    (``<name>-registration.txt``), the deploy window's to ``profile_to``."""
    root = f"bench/conv-{uuid.uuid4().hex[:8]}"
    procs = Processes(workdir)
    summary_topic = f"{root}/fleet/summary"
    watcher = Watcher(
        url,
        [
            f"{root}/nodes/+/+/reported",
            f"{root}/nodes/+/+/desired",
            f"{root}/apps/+/status",
            summary_topic,
            f"{root}/orchestrator/status",
        ],
    )
    await watcher.start()
    fleet: RunningFleet | None = None
    metrics_addr = None if profile_to is not None else f"127.0.0.1:{free_port()}"
    try:
        procs.orchestrator(
            url, root, profile_to=profile_to, profile_windows="separate", metrics_addr=metrics_addr
        )
        started = time.monotonic()

        def orchestrator_online() -> bool:
            orch = procs.procs["orchestrator"]
            if orch.poll() is not None:
                raise BenchError(f"the orchestrator exited with {orch.returncode}")
            status = watcher.latest.get(f"{root}/orchestrator/status", {})
            return status.get("state") == "online"

        # The storm starts against a running orchestrator (its own start is not the storm's).
        await wait_for(orchestrator_online, 60, "the orchestrator's online status")
        fleet = start_fleet(kind, url, root, nodes, sites=max(1, nodes // 50), workdir=workdir)
        alive = Alive(procs, fleet, profiled=profile_to is not None, broker_pid=broker_pid)
        alive.profile(signal.SIGUSR1)
        try:
            registration = await _registered(watcher, summary_topic, nodes, alive, fleet)
        finally:
            alive.profile(signal.SIGUSR2)
        registration["handled_by_kind"] = handled_by_kind(metrics_addr)
        ready_s = time.monotonic() - started
        if profile_to is not None:
            window = profile_to.with_name(f"{profile_to.stem}-registration.txt")
            await _move_when_written(profile_to, window)
        results = []
        async with Operator(url, root) as op:
            for case in cases:
                results.append(await deploy_case(watcher, op, root, case, alive))
        return {
            "nodes": nodes,
            "fleet": kind,
            **registration,
            "ready_s": round(ready_s, 2),
            "cases": results,
        }
    finally:
        await watcher.stop()
        procs.close()
        if fleet is not None:
            fleet.stop()


async def _move_when_written(written: Path, to: Path) -> None:
    """The profiled orchestrator writes a window's profile on SIGUSR2: wait, then move it."""
    await wait_for(written.exists, 60, f"the profile {written.name}")
    await asyncio.sleep(0.5)  # written in one call, but give the writer its close
    await asyncio.to_thread(written.replace, to)
