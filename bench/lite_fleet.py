"""Protocol-level fake nodes, thousands in one process, for convergence and fleet-size runs.

A :class:`LiteNode` speaks the real wire contract over its own MQTT connection (status with
a will, retained capabilities, a full telemetry heartbeat, reported) but runs nothing: it
answers each desired document by reporting every workload ``running`` at once. So a
convergence figure measured with it is the control plane's own time — orchestrator,
broker and the round trip — without any runtime's start-up delay.

Used when ``edgefleet-agent simulate`` (real agents on the simulated runtime) is not
available, and for sizes beyond what real in-process agents carry on this machine; the
results name which fleet ran.

    python -m bench.lite_fleet --broker mqtt://127.0.0.1:1883 --root bench/x --count 1000

prints one JSON line ``{"ready": N, "connect_s": ...}`` when every node is connected and
announced, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from edgefleet_protocol import (
    Capabilities,
    Desired,
    NodeStatus,
    ProtocolError,
    Reported,
    Telemetry,
    Topics,
    WorkloadReport,
    decode,
    encode,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.node_messages import NetworkInfo

from bench import mqtt_wire as wire
from bench.mqtt_lite import LiteClient

HEARTBEAT_S = 60.0
KEEPALIVE_S = 120


@dataclass(frozen=True, slots=True)
class NodeSpec:
    node: str
    site: str
    cpu_cores: float = 4.0
    memory_mb: int = 4096


def fleet_specs(count: int, sites: int, prefix: str = "gw") -> list[NodeSpec]:
    """``count`` nodes named ``<prefix>-00000``... spread round-robin over ``sites``."""
    if count <= 0:
        raise ValueError(f"count must be at least 1, got {count}")
    if sites <= 0:
        raise ValueError(f"sites must be at least 1, got {sites}")
    width = max(5, len(str(count - 1)))
    return [
        NodeSpec(node=f"{prefix}-{i:0{width}d}", site=f"site-{i % sites:03d}") for i in range(count)
    ]


class LiteNode:
    def __init__(self, topics: Topics, spec: NodeSpec, *, session_no: int) -> None:
        self.topics = topics
        self.spec = spec
        self.session_no = session_no
        self.status_topic = topics.node_status(spec.site, spec.node)
        self.desired_topic = topics.node_desired(spec.site, spec.node)
        self.orchestrator_topic = topics.orchestrator_status()
        self.desired_seen = 0
        self.orchestrator_since: float | None = None  # the orchestrator run last seen
        self.client = LiteClient(
            f"lite-{spec.node}-{uuid.uuid4().hex[:6]}",
            keepalive=KEEPALIVE_S,
            will=wire.Will(self.status_topic, self._status("offline")),
            on_message=self._on_message,
        )

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return encode(
            NodeStatus(
                node=self.spec.node,
                site=self.spec.site,
                state=state,
                session=self.session_no,
                since=time.time(),
                agent_version="bench-lite",
            )
        )

    async def start(self, host: str, port: int) -> None:
        await self.client.connect(host, port)
        await self.client.subscribe([self.desired_topic, self.orchestrator_topic])
        self.announce()

    def announce(self) -> None:
        s = self.spec
        caps = Capabilities(
            node=s.node,
            site=s.site,
            arch="aarch64",
            cpu_cores=s.cpu_cores,
            memory_mb=s.memory_mb,
            disk_mb=32000,
            runtimes=["process", "simulated"],
            network=NetworkInfo(link="ethernet", bandwidth_mbps=100),
            agent_version="bench-lite",
        )
        self.client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        self.client.publish(
            self.topics.node_capabilities(s.site, s.node), encode(caps), qos=1, retain=True
        )
        self.heartbeat()

    def heartbeat(self) -> None:
        s = self.spec
        telemetry = Telemetry(
            node=s.node, site=s.site, ts=time.time(), full=True, cpu_pct=3.0, memory_pct=20.0
        )
        self.client.publish(self.topics.node_telemetry(s.site, s.node), encode(telemetry))
        self.client.ping()

    def on_orchestrator_status(self, body: dict[str, object]) -> None:
        """A newly started orchestrator knows nothing live: say hello (status and a full
        telemetry), by the agents' rule (``edgefleet_agent.core.presence.hello_due``): not
        for the first orchestrator run a node sees, whose (retained) status arrives right
        after the node's own connect announced it, only for a later run."""
        since = body.get("since")
        if body.get("state") != "online" or since == self.orchestrator_since:
            return
        first = self.orchestrator_since is None
        self.orchestrator_since = since if isinstance(since, float | int) else None
        if not first:
            self.client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
            self.heartbeat()

    def _on_message(self, message: wire.Message) -> None:
        if not message.payload:
            return
        if message.topic == self.orchestrator_topic:
            with contextlib.suppress(ValueError, AttributeError):
                self.on_orchestrator_status(json.loads(message.payload))
            return
        if message.topic != self.desired_topic:
            return
        try:
            doc = decode(Desired, message.payload)
        except ProtocolError as exc:
            print(f"lite-fleet: {self.spec.node}: bad desired document: {exc}", file=sys.stderr)
            return
        self.desired_seen += 1
        now = time.time()
        report = Reported(
            node=self.spec.node,
            site=self.spec.site,
            observed_generation=doc.generation,
            session=self.session_no,
            ts=now,
            workloads={
                w.name: WorkloadReport(app=w.app, spec_hash=w.spec_hash, state="running", since=now)
                for w in doc.workloads
            },
        )
        self.client.publish(
            self.topics.node_reported(self.spec.site, self.spec.node),
            encode(report),
            qos=1,
            retain=True,
        )


class LiteFleet:
    """Many :class:`LiteNode` in this process, with one heartbeat timer for all of them."""

    def __init__(self, url: str, root: str, specs: list[NodeSpec]) -> None:
        names = [s.node for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("fleet has duplicate node ids")
        self.settings = BrokerSettings.from_url(url)
        session_no = int(time.time())
        self.nodes = [LiteNode(Topics(root), s, session_no=session_no) for s in specs]
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self, *, concurrency: int = 200) -> float:
        """Connect and announce every node; returns the seconds it took."""
        raise_fd_limit(len(self.nodes) + 256)
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)
        host, port = self.settings.host, self.settings.port

        async def one(node: LiteNode) -> None:
            async with gate:
                await node.start(host, port)

        await asyncio.gather(*(one(n) for n in self.nodes))
        self._heartbeat = asyncio.create_task(self._beat(), name="lite-fleet-heartbeat")
        return time.monotonic() - started

    async def _beat(self) -> None:
        """Every node's full telemetry and a ping once per heartbeat, spread evenly."""
        slices = 20
        while True:
            for k in range(slices):
                await asyncio.sleep(HEARTBEAT_S / slices)
                for node in self.nodes[k::slices]:
                    node.heartbeat()

    def lost(self) -> int:
        return sum(1 for n in self.nodes if n.client.lost.is_set())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for node in self.nodes:
            node.client.disconnect()
        await asyncio.sleep(0)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit toward ``wanted`` (as far as the hard limit,
    or beyond it when privileged); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    for new_hard in (max(hard, wanted), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def serve(url: str, root: str, specs: list[NodeSpec]) -> None:
    fleet = LiteFleet(url, root, specs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    connect_s = await fleet.start()
    print(json.dumps({"ready": len(fleet.nodes), "connect_s": round(connect_s, 3)}), flush=True)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            if fleet.lost():
                print(json.dumps({"lost": fleet.lost()}), flush=True)
                raise SystemExit(3)
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="protocol-level fake fleet for benchmarks")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--prefix", default="gw")
    args = parser.parse_args(argv)
    try:
        specs = fleet_specs(args.count, args.sites, args.prefix)
    except ValueError as exc:
        print(f"lite-fleet: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(args.broker, args.root, specs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
