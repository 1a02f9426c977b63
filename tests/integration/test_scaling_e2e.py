"""Scaling end to end against a real mosquitto: the orchestrator service with protocol-level
fake nodes whose workloads take a while to start and report a custom metric we drive.

* A custom metric driven up scales the app out step by step to max, and back in to min
  once it drops and the cooldown has passed, with an ``autoscale`` event explaining each
  step (observed value, target, resulting count) — and the count survives a restart.
* A drain moves every replica off a node make-before-break: at every app status the
  orchestrator published, no fewer than ``replicas - max_unavailable`` were running; the
  CLI's ``drain --wait`` follows it to the end. A drain with nowhere to go stops, says
  which replica is stuck and why, and leaves it running.
* A node that joins gets replicas of a spread app (rebalancing), make-before-break.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_protocol import (
    AppStatus,
    Desired,
    Reported,
    Telemetry,
    TopicKind,
    WorkloadReport,
    WorkloadUsage,
    decode,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Session
from harness.fleet import FakeNode, Operator, eventually, running_orchestrator

CLI = Path(sys.executable).parent / "edgefleet"


class SlowNode(FakeNode):
    """A fake node whose new workloads report ``starting`` first and ``running`` only
    ``start_s`` later (a real container takes a moment), and which publishes a custom
    metric for every workload it runs."""

    def __init__(self, *args: Any, start_s: float = 0.4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_s = start_s
        self.running_since: dict[str, float] = {}
        self.current: Desired | None = None

    async def _serve(self) -> None:
        async for msg in self.session.messages():
            if not msg.payload or msg.topic == self.topics.orchestrator_status():
                if msg.payload and json.loads(msg.payload).get("state") == "online":
                    await self._announce()
                continue
            doc = decode(Desired, msg.payload)
            self.desired.append(doc)
            self.current = doc
            now = time.time()
            names = {w.name for w in doc.workloads}
            self.running_since = {n: t for n, t in self.running_since.items() if n in names} | {
                n: now + self.start_s for n in names if n not in self.running_since
            }
            await self.report()

    async def report(self) -> None:
        doc = self.current
        if doc is None:
            return
        now = time.time()
        workloads = {
            w.name: WorkloadReport(
                app=w.app,
                spec_hash=w.spec_hash,
                state="running" if now >= self.running_since.get(w.name, now) else "starting",
                since=now,
            )
            for w in doc.workloads
        }
        report = Reported(
            node=self.node, site=self.site, observed_generation=doc.generation,
            session=self.session_no, ts=now, workloads=workloads,
        )  # fmt: skip
        await self.session.publish_model(
            TopicKind.NODE_REPORTED, self.topics.node_reported(self.site, self.node), report
        )

    async def tick(self, metric: dict[str, float]) -> None:
        """Report starting workloads that have started by now, and the metric."""
        await self.report()
        if self.current is None or not self.current.workloads:
            return
        usage = {w.name: WorkloadUsage(metrics=dict(metric)) for w in self.current.workloads}
        tele = Telemetry(node=self.node, site=self.site, ts=time.time(), workloads=usage)
        await self.session.publish_model(
            TopicKind.NODE_TELEMETRY, self.topics.node_telemetry(self.site, self.node), tele
        )


class Feed:
    """Drives every node's reports and metric every ``every_s`` (the agents' heartbeat)."""

    def __init__(self, nodes: list[SlowNode], every_s: float = 0.2) -> None:
        self.nodes, self.every_s = nodes, every_s
        self.metric: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for n in self.nodes:
                await n.tick(self.metric)
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> Feed:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


class Sampler:
    """Counts, every ``every_s``, the distinct replicas of ``app`` that the nodes run (the
    ground truth an agent would report), independent of what the orchestrator publishes."""

    def __init__(self, nodes: list[SlowNode], app: str, every_s: float = 0.02) -> None:
        self.nodes, self.app, self.every_s = nodes, app, every_s
        self.counts: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def _running(self) -> int:
        now = time.time()
        names = set()
        for n in self.nodes:
            doc = n.current
            for w in doc.workloads if doc is not None else []:
                if w.app == self.app and n.running_since.get(w.name, now + 1) <= now:
                    names.add(w.name)
        return len(names)

    async def _run(self) -> None:
        while True:
            self.counts.append(self._running())
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


class Listener:
    """Every orchestrator event and every app status, in arrival order."""

    def __init__(self, url: str, root: str) -> None:
        self.root = root
        self.events: list[dict[str, Any]] = []
        self.statuses: list[AppStatus] = []
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"listen-{uuid.uuid4().hex[:6]}",
            subscriptions=[f"{root}/orchestrator/events", f"{root}/apps/+/status"],
        )
        self._task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        async for msg in self.session.messages():
            if not msg.payload:
                continue
            if msg.topic.endswith("/events"):
                self.events.append(json.loads(msg.payload))
            else:
                self.statuses.append(decode(AppStatus, msg.payload))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    async def __aenter__(self) -> Listener:
        self.session.start()
        assert await self.session.wait_connected(5)
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.session.close()


def orchestrator(url: str, root: str, data_dir: Path, **extra: Any) -> Any:
    return running_orchestrator(
        url,
        root,
        data_dir,
        **{
            "tick_s": 0.1,
            "stale_after_s": 10,
            "scaling_interval_s": 0.3,
            "resize_cooldown_s": 1.0,
            "rebalance_max_moves": 0,
            **extra,
        },
    )


async def fleet(url: str, root: str, *names: str, **node_args: Any) -> list[SlowNode]:
    nodes = [SlowNode(url, root, name, "s1", **node_args) for name in names]
    for node in nodes:
        await node.start()
    return nodes


def running(orch: Orchestrator, app: str) -> int:
    status = orch.state.statuses.get(app)
    return 0 if status is None else status.running


def replicas_of(orch: Orchestrator, app: str) -> dict[str, str]:
    return {a.replica: a.node for a in orch.state.assignments if a.app == app}


AUTOSCALED = {
    "name": "ingest",
    "workload": {"runtime": "simulated", "resources": {"cpu": 0.25, "memory_mb": 64}},
    "autoscale": {
        "metric": "queue.depth", "target": 10, "min": 1, "max": 4, "tolerance": 0.1,
        "scale_up_cooldown_s": 0.5, "scale_down_cooldown_s": 2.0,
    },
}  # fmt: skip


async def test_a_custom_metric_scales_out_to_max_and_back_in_after_the_cooldown(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", "gw3", "gw4")
    async with (
        Listener(broker_url, topic_root) as heard,
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
        Feed(nodes) as feed,
    ):
        assert (await op.call("deploy", manifest=AUTOSCALED))["ok"]
        await eventually(lambda: len(replicas_of(orch, "ingest")) == 1, what="starts at min")
        feed.metric = {"queue.depth": 25.0}  # every replica is 2.5x over target
        await eventually(
            lambda: orch.state.apps["ingest"].replicas == 4, timeout_s=15, what="scaled to max"
        )
        await eventually(lambda: orch.state.statuses["ingest"].running == 4, what="4 running")
        up = [e for e in heard.of("autoscale") if e["details"]["to"] > e["details"]["from"]]
        steps = [(e["details"]["from"], e["details"]["to"]) for e in up]
        assert steps == [(1, 3), (3, 4)], steps  # ceil(1 x 2.5) = 3, then ceil(3 x 2.5) held to 4
        for e in up:
            assert (e["details"]["observed"], e["details"]["target"]) == (25.0, 10)
            assert "queue.depth 25 (average of" in e["message"] and "vs target 10" in e["message"]
        assert up[1]["ts"] - up[0]["ts"] >= 0.5, "the second step waited for the up cooldown"

        dropped_at = time.time()
        feed.metric = {"queue.depth": 1.0}
        await eventually(
            lambda: orch.state.apps["ingest"].replicas == 1, timeout_s=15, what="back to min"
        )

        def downs() -> list[dict[str, Any]]:
            return [e for e in heard.of("autoscale") if e["details"]["to"] < e["details"]["from"]]

        await eventually(lambda: bool(downs()), what="the scale-in event")
        (down,) = downs()
        assert (down["details"]["from"], down["details"]["to"]) == (4, 1)
        assert down["ts"] - dropped_at >= 2.0, "the scale-in waited for the down cooldown"
        assert down["details"]["observed"] == 1.0
        status = orch.state.statuses["ingest"].autoscale
        assert status is not None and status.state in ("scaled-down", "steady")
        stored = (await op.call("app", app="ingest"))["result"]["manifest"]
        assert stored["replicas"] == 1, "the manifest is authoritative"
        refused = await op.call("scale", app="ingest", replicas=3)
        assert refused["error"]["code"] == "conflict"

        feed.metric = {"queue.depth": 25.0}
        await eventually(lambda: orch.state.apps["ingest"].replicas >= 3, what="up again")
        feed.metric = {"queue.depth": 10.0}  # on target: the count holds from here
        await asyncio.sleep(1.0)
        count = orch.state.apps["ingest"].replicas
        where = replicas_of(orch, "ingest")
    # A restart keeps the count and the cooldown memory: nothing moves, nothing rescales.
    async with orchestrator(broker_url, topic_root, tmp_path) as again:
        await eventually(lambda: again.stats.passes >= 1, what="first pass")
        assert again.state.apps["ingest"].replicas == count
        assert replicas_of(again, "ingest") == where
        memory = again.state.control.autoscale["ingest"]
        assert memory.last_direction == "up" and memory.last_scaled_at is not None
    for n in nodes:
        await n.stop()


DRAINED = {
    "name": "web",
    "replicas": 4,
    "workload": {"runtime": "simulated", "resources": {"cpu": 0.5, "memory_mb": 128}},
    "placement": {"max_per_node": 2},
    "disruption": {"max_unavailable": 1},
}


async def test_a_drain_moves_everything_and_never_goes_below_the_budget(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", start_s=0.5)
    async with (
        Listener(broker_url, topic_root) as heard,
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
        Feed(nodes, every_s=0.1),
    ):
        assert (await op.call("deploy", manifest=DRAINED))["ok"]
        await eventually(lambda: running(orch, "web") == 4, what="4 running")
        assert set(replicas_of(orch, "web").values()) == {"gw1", "gw2"}
        nodes.extend(await fleet(broker_url, topic_root, "gw3", start_s=0.5))
        await eventually(lambda: "gw3" in orch.state.registry.nodes, what="gw3 known")
        heard.statuses.clear()
        async with Sampler(nodes, "web") as sampler:
            drain = await asyncio.to_thread(
                subprocess.run,
                [str(CLI), "drain", "gw1", "--wait", "--timeout", "30",
                 "--broker", broker_url, "--root", topic_root, "--output", "json"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        assert drain.returncode == 0, drain.stderr
        progress = json.loads(drain.stdout)
        assert (progress["state"], progress["remaining"]) == ("drained", 0)
        assert "gw1" not in replicas_of(orch, "web").values()
        await eventually(lambda: orch.state.statuses["web"].running == 4, what="all back")
        counts = [s.running for s in heard.statuses if s.app == "web"]
        assert counts, "statuses were published during the drain"
        print(f"running at each of {len(counts)} statuses during the drain: {counts}")
        print(
            f"running as the nodes saw it, {len(sampler.counts)} samples: min {min(sampler.counts)}"
        )
        assert min(sampler.counts) >= 4 - 1, "the nodes themselves never ran fewer"
        assert min(counts) >= 4 - 1, counts
        retiring_seen = any(
            r.state == "retiring" for s in heard.statuses for r in s.replicas if s.app == "web"
        )
        assert retiring_seen, "old copies were listed while their replacements started"
        gw1 = next(n for n in nodes if n.node == "gw1")
        await eventually(lambda: gw1.workloads == set(), what="gw1's document emptied")
        moves = heard.of("drain")
        assert any("make-before-break" in e["message"] for e in moves)
        assert any(e["message"].startswith("node gw1 is drained") for e in moves)
        assert len([e for e in heard.of("move") if e["details"]["completed"]]) >= 2
        node = (await op.call("node", node="gw1"))["result"]
        assert (node["cordoned"], node["drain"]["state"]) == (True, "drained")
    for n in nodes:
        await n.stop()


async def test_a_drain_with_nowhere_to_go_stops_and_names_the_stuck_replica(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", start_s=0.1)
    manifest = {**DRAINED, "replicas": 2, "placement": {"max_per_node": 1}}
    async with (
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
        Feed(nodes, every_s=0.1),
    ):
        assert (await op.call("deploy", manifest=manifest))["ok"]
        await eventually(lambda: running(orch, "web") == 2, what="2 running")
        drain = await asyncio.to_thread(
            subprocess.run,
            [str(CLI), "drain", "gw1", "--wait", "--timeout", "30",
             "--broker", broker_url, "--root", topic_root],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert drain.returncode == 1, drain.stdout + drain.stderr
        assert "error: the drain of gw1 cannot finish" in drain.stderr
        assert "stuck: web-" in drain.stderr and "stays running" in drain.stderr
        assert "1 node: max 1 replica per node" in drain.stderr
        assert "1 node: cordoned" in drain.stderr
        assert "gw1" in replicas_of(orch, "web").values(), "the stuck replica stays"
        assert orch.state.statuses["web"].running == 2
    for n in nodes:
        await n.stop()


async def test_a_joining_node_gets_replicas_of_a_spread_app(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", start_s=0.2)
    manifest = {**DRAINED, "replicas": 6, "placement": {"max_per_node": 6}}
    async with (
        Listener(broker_url, topic_root) as heard,
        orchestrator(
            broker_url, topic_root, tmp_path, rebalance_max_moves=1, rebalance_interval_s=0.5
        ) as orch,
        Operator(broker_url, topic_root) as op,
        Feed(nodes, every_s=0.1),
    ):
        assert (await op.call("deploy", manifest=manifest))["ok"]
        await eventually(lambda: running(orch, "web") == 6, what="6 running")
        heard.statuses.clear()
        nodes.extend(await fleet(broker_url, topic_root, "gw3", start_s=0.2))
        await eventually(
            lambda: sorted(list(replicas_of(orch, "web").values()).count(n) for n in
                           ("gw1", "gw2", "gw3")) == [2, 2, 2] and not orch.state.control.retiring,
            timeout_s=20, what="two replicas per node",
        )  # fmt: skip
        started = heard.of("rebalance")
        assert len(started) == 2, [e["message"] for e in started]
        assert started[1]["ts"] - started[0]["ts"] >= 0.4, "one move per 0.5 s window"
        assert min(s.running for s in heard.statuses if s.app == "web") == 6, "never a dip"
    for n in nodes:
        await n.stop()


async def test_a_drain_in_flight_goes_on_after_an_orchestrator_restart(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", "gw3", start_s=2.0)
    manifest = {**DRAINED, "replicas": 2, "placement": {"max_per_node": 1}}
    async with Feed(nodes, every_s=0.1):
        async with (
            orchestrator(broker_url, topic_root, tmp_path) as orch,
            Operator(broker_url, topic_root) as op,
        ):
            assert (await op.call("deploy", manifest=manifest))["ok"]
            await eventually(lambda: running(orch, "web") == 2, what="2 running")
            victim = sorted(replicas_of(orch, "web").values())[0]
            assert (await op.call("drain", node=victim))["ok"]
            await eventually(lambda: bool(orch.state.control.retiring), what="a move in flight")
            (copy,) = orch.state.control.retiring
        # Stopped mid-move: the replacement is still starting, the old copy still runs.
        old_node = next(n for n in nodes if n.node == victim)
        assert copy.replica in old_node.workloads
        async with orchestrator(broker_url, topic_root, tmp_path) as again:
            await eventually(lambda: again.stats.passes >= 1, what="first pass")
            assert again.state.control.drains[victim].node == victim
            assert again.state.registry.nodes[victim].cordoned
            await eventually(
                lambda: again.state.drains.get(victim, {}).get("state") == "drained",
                timeout_s=15,
                what="the drain finished after the restart",
            )
            await eventually(lambda: old_node.workloads == set(), what="old copy stopped")
            assert victim not in replicas_of(again, "web").values()
            await eventually(lambda: again.state.statuses["web"].running == 2, what="2 running")
    for n in nodes:
        await n.stop()
