"""Protocol-level stand-ins for agents and operators, for orchestrator tests.

A :class:`FakeNode` speaks the real wire contract over a real broker connection (status,
capabilities, telemetry, reported) but runs nothing: it answers each desired document by
reporting every workload ``running``. The orchestrator under test cannot tell it from an
agent, which is the point: these tests are about the orchestrator's decisions.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_protocol import (
    Capabilities,
    Desired,
    NodeStatus,
    Reported,
    Telemetry,
    TopicKind,
    Topics,
    WorkloadReport,
    decode,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.node_messages import NetworkInfo
from edgefleet_protocol.session import Publication, Session


class FakeNode:
    def __init__(
        self,
        url: str,
        root: str,
        node: str,
        site: str,
        *,
        cpu_cores: float = 4,
        memory_mb: int = 4096,
        latency_ms: dict[str, float] | None = None,
        bandwidth_mbps: float | None = 100,
        labels: dict[str, str] | None = None,
        region: str | None = "eu",
        session_no: int = 1,
        heartbeat_s: float | None = 10.0,
    ) -> None:
        self.topics = Topics(root)
        # Real agents heartbeat (telemetry at least every 60 s); without one a fake node goes
        # stale on an orchestrator with a short --stale-after once a test module runs long.
        self.heartbeat_s = heartbeat_s
        self._beat: asyncio.Task[None] | None = None
        self.node, self.site = node, site
        self.session_no = session_no
        self.caps = Capabilities(
            node=node,
            site=site,
            arch="aarch64",
            cpu_cores=cpu_cores,
            memory_mb=memory_mb,
            disk_mb=32000,
            runtimes=["process", "simulated"],
            labels=labels or {},
            region=region,
            network=NetworkInfo(link="ethernet", bandwidth_mbps=bandwidth_mbps),
        )
        self.latency_ms = latency_ms or {}
        self.desired: list[Desired] = []
        self.settings = BrokerSettings.from_url(url)
        self.session = Session(
            self.settings,
            client_id=f"fake-{node}-{uuid.uuid4().hex[:6]}",
            will=Publication.of(
                TopicKind.NODE_STATUS, self.topics.node_status(site, node), self._status("offline")
            ),
            subscriptions=[self.topics.node_desired(site, node), self.topics.orchestrator_status()],
            on_connect=self._announce,
        )
        self._task: asyncio.Task[None] | None = None

    def _status(self, state: str) -> NodeStatus:
        return NodeStatus(
            node=self.node,
            site=self.site,
            state=state,
            session=self.session_no,  # type: ignore[arg-type]
            since=time.time(),
        )

    async def _announce(self) -> None:
        t = self.topics
        await self.session.publish_model(
            TopicKind.NODE_STATUS, t.node_status(self.site, self.node), self._status("online")
        )
        await self.session.publish_model(
            TopicKind.NODE_CAPABILITIES, t.node_capabilities(self.site, self.node), self.caps
        )
        await self.telemetry(full=True)

    async def telemetry(self, *, full: bool = False, **values: Any) -> None:
        msg = Telemetry(
            node=self.node,
            site=self.site,
            ts=time.time(),
            full=full,
            latency_ms=self.latency_ms,
            **values,
        )
        await self.session.publish_model(
            TopicKind.NODE_TELEMETRY, self.topics.node_telemetry(self.site, self.node), msg
        )

    async def start(self) -> None:
        self.session.start()
        assert await self.session.wait_connected(5)
        self._task = asyncio.create_task(self._serve(), name=f"fake-node-{self.node}")
        if self.heartbeat_s:
            self._beat = asyncio.create_task(self._heartbeat(), name=f"fake-beat-{self.node}")

    async def _heartbeat(self) -> None:
        assert self.heartbeat_s
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.telemetry()

    async def _serve(self) -> None:
        async for msg in self.session.messages():
            if not msg.payload:
                continue
            if msg.topic == self.topics.orchestrator_status():
                # The orchestrator (re)started and knows nothing live: say hello, as agents do.
                if json.loads(msg.payload).get("state") == "online":
                    await self._announce()
                continue
            doc = decode(Desired, msg.payload)
            self.desired.append(doc)
            report = Reported(
                node=self.node,
                site=self.site,
                observed_generation=doc.generation,
                session=self.session_no,
                ts=time.time(),
                workloads={
                    w.name: WorkloadReport(
                        app=w.app, spec_hash=w.spec_hash, state="running", since=time.time()
                    )
                    for w in doc.workloads
                },
            )
            await self.session.publish_model(
                TopicKind.NODE_REPORTED, self.topics.node_reported(self.site, self.node), report
            )

    @property
    def workloads(self) -> set[str]:
        return {w.name for w in self.desired[-1].workloads} if self.desired else set()

    async def go_offline(self) -> None:
        """A clean stop: offline status, then disconnect (as the agent does on SIGTERM)."""
        for task in (self._task, self._beat):
            if task:
                task.cancel()
        await self.session.close(
            [
                Publication.of(
                    TopicKind.NODE_STATUS,
                    self.topics.node_status(self.site, self.node),
                    self._status("offline"),
                )
            ]
        )

    async def stop(self) -> None:
        for task in (self._task, self._beat):
            if task:
                task.cancel()
        await self.session.close()


class Operator:
    """Sends commands and waits for the replies, like the CLI does."""

    def __init__(
        self, url: str, root: str, user: str = "tester", *, operator: str | None = None
    ) -> None:
        """``operator``: send as that operator (``commands/<operator>/<verb>``, replies under
        ``replies/<operator>``); without it, accountless commands (``commands/<verb>``)."""
        self.topics = Topics(root)
        self.operator = operator
        self.reply_root = f"{root}/replies/{operator or user}"
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"op-{uuid.uuid4().hex[:6]}",
            subscriptions=[f"{self.reply_root}/#"],
        )

    async def __aenter__(self) -> Operator:
        self.session.start()
        assert await self.session.wait_connected(5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def send_raw(self, verb: str, payload: bytes) -> None:
        topic = self.topics.command(verb, self.operator)
        await self.session.publish(Publication(topic=topic, payload=payload))

    async def call(
        self,
        verb: str,
        timeout_s: float = 10.0,
        request_id: str | None = None,
        reply_to: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        rid = request_id or uuid.uuid4().hex
        reply_to = reply_to or f"{self.reply_root}/{rid}"
        body = {"v": 1, "request_id": rid, "reply_to": reply_to, **args}
        await self.send_raw(verb, json.dumps(body).encode())
        async with asyncio.timeout(timeout_s):
            async for msg in self.session.messages():
                if msg.topic == reply_to:
                    reply: dict[str, Any] = json.loads(msg.payload)
                    return reply
        raise AssertionError("unreachable")


class Watcher:
    """Keeps the latest payload of every topic under some filters; ``hooks`` see each
    arrival as it happens (for timing)."""

    def __init__(self, url: str, filters: list[str]) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.hooks: list[Callable[[str, dict[str, Any]], None]] = []
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"w-{uuid.uuid4().hex[:6]}",
            subscriptions=filters,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.session.start()
        if not await self.session.wait_connected(5):
            raise RuntimeError(f"cannot reach the broker at {self.session.settings.redacted()}")
        self._task = asyncio.create_task(self._pump(), name="watcher")

    async def _pump(self) -> None:
        async for msg in self.session.messages():
            if msg.payload:
                body = json.loads(msg.payload)
                self.latest[msg.topic] = body
                for hook in self.hooks:
                    hook(msg.topic, body)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.session.close()


@asynccontextmanager
async def running_orchestrator(
    url: str, root: str, data_dir: Path, **settings: Any
) -> AsyncIterator[Orchestrator]:
    """A real Orchestrator in this event loop, with test-fast timings (override any
    OrchestratorConfig field by keyword); stopped cleanly on exit."""
    fast: dict[str, Any] = {"settle_s": 0.3, "tick_s": 0.2}
    fast.update(settings)
    config = OrchestratorConfig(
        broker=BrokerSettings.from_url(url),
        data_dir=data_dir,
        root=root,
        client_id=f"orch-{uuid.uuid4().hex[:6]}",
        **fast,
    )
    orch = Orchestrator(config)
    stop = asyncio.Event()
    task = asyncio.create_task(orch.run(stop))
    try:
        assert await orch.session.wait_connected(5)
        yield orch
    finally:
        stop.set()
        await task


async def eventually(
    check: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def edgefleet(*args: str) -> tuple[int, str, str]:
    """Run the real ``edgefleet`` command of this environment; (exit code, stdout, stderr).
    Piped, with ``COLUMNS`` unset: tables never wrap (as for a script)."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "edgefleet"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()
