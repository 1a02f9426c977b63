"""The orchestrator service against a real mosquitto, with protocol-level fake nodes:
placement with constraints, node loss after grace, restart without reshuffle, coalescing,
hostile input, and the command API's error replies and idempotency."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from harness.fleet import FakeNode, Operator, eventually, running_orchestrator
from harness.observer import Observer


def manifest(
    name: str = "cam", replicas: int = 3, grace_s: float = 1.0, **placement: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": replicas,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.5, "memory_mb": 128}},
        "placement": placement,
        "disconnect": {"grace_s": grace_s},
    }


def orchestrator(url: str, root: str, data_dir: Path, **extra: Any) -> Any:
    return running_orchestrator(url, root, data_dir, **{"stale_after_s": 5, **extra})


def hosts(nodes: list[FakeNode]) -> dict[str, set[str]]:
    return {n.node: n.workloads for n in nodes if n.workloads}


async def test_deploy_places_replicas_only_on_nodes_within_latency(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = [
        FakeNode(
            broker_url,
            topic_root,
            f"gw{i}",
            f"site{i % 3}",
            latency_ms={"camera-hub": 80.0 if i < 2 else 10.0 + i},
        )
        for i in range(5)
    ]
    for n in nodes:
        await n.start()
    async with (
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        reply = await op.call(
            "deploy", manifest=manifest(max_latency_ms={"target": "camera-hub", "ms": 50})
        )
        assert reply["ok"], reply
        assert reply["result"]["action"] == "created"
        await eventually(lambda: sum(len(w) for w in hosts(nodes).values()) == 3, what="3 replicas")
        assert set(hosts(nodes)) == {"gw2", "gw3", "gw4"}
        await eventually(
            lambda: (
                orch.state.statuses.get("cam") is not None
                and orch.state.statuses["cam"].state == "healthy"
            ),
            what="app healthy",
        )
        status = (await op.call("app", app="cam"))["result"]["status"]
        assert status["running"] == 3
        assert {r["node"] for r in status["replicas"]} == {"gw2", "gw3", "gw4"}
    for n in nodes:
        await n.stop()


async def test_lost_node_replicas_move_after_grace_and_restart_keeps_assignments(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = [FakeNode(broker_url, topic_root, f"n{i}", "s1") for i in range(3)]
    for n in nodes:
        await n.start()
    async with (
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        assert (
            await op.call("deploy", manifest=manifest(replicas=2, grace_s=1.0, max_per_node=1))
        )["ok"]
        await eventually(lambda: len(hosts(nodes)) == 2, what="2 nodes hosting")
        victim = next(n for n in nodes if n.workloads)
        moved = victim.workloads
        await victim.go_offline()
        survivors = [n for n in nodes if n is not victim]
        await eventually(
            lambda: all(any(w in n.workloads for n in survivors) for w in moved),
            timeout_s=10,
            what="replica rescheduled",
        )
        before = sorted((a.replica, a.node) for a in orch.state.assignments)
        generations = dict(orch.published)
    # Restart: same data dir → same assignments, no new generation for unchanged nodes.
    docs_before = {n.node: len(n.desired) for n in survivors}
    async with orchestrator(broker_url, topic_root, tmp_path) as orch2:
        await eventually(lambda: orch2.stats.passes >= 1, what="first pass")
        # Republished on start (a new message on every survivor's live subscription), with
        # the same generation.
        await eventually(
            lambda: all(len(n.desired) > docs_before[n.node] for n in survivors),
            what="every stored document republished",
        )
        assert sorted((a.replica, a.node) for a in orch2.state.assignments) == before
        for node, pub in generations.items():
            assert orch2.published[node].generation == pub.generation
        for n in survivors:
            assert n.desired[-1].generation == generations[n.node].generation
    for n in survivors:
        await n.stop()


async def test_a_burst_of_telemetry_costs_a_few_passes(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    node = FakeNode(broker_url, topic_root, "busy", "s1", latency_ms={"hub": 10.0})
    await node.start()
    async with orchestrator(broker_url, topic_root, tmp_path) as orch:
        await eventually(lambda: "busy" in orch.state.registry.nodes, what="node known")
        await eventually(lambda: orch.stats.passes >= 1, what="first pass")
        passes = orch.stats.passes
        seen = orch.stats.messages
        started = time.monotonic()
        for i in range(1000):
            node.latency_ms = {"hub": 10.0 + (i % 2) * 50}  # every message matters to placement
            await node.telemetry()
        await eventually(lambda: orch.stats.messages >= seen + 1000, what="all telemetry consumed")
        await asyncio.sleep(0.3)
        took = time.monotonic() - started
        ran = orch.stats.passes - passes
        # At most one pass per debounce window, however slowly a loaded box delivers the
        # burst (one pass per message would be 1,000); quiet, it is a handful.
        assert ran <= took / orch.config.debounce_s + 2, (ran, took)
        assert ran < 1000 / 5, ran
    await node.stop()


async def test_hostile_messages_are_dropped_with_events_and_the_loop_goes_on(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    async with (
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
        Observer(broker_url, [f"{topic_root}/orchestrator/events"]) as obs,
    ):
        bad = {
            f"{topic_root}/nodes/s1/n1/status": b"not json",
            f"{topic_root}/nodes/s1/n1/capabilities": b'{"v":1,"node":"other","site":"s1"}',
            f"{topic_root}/nodes/s1/n1/telemetry": b"\xff\xfe",
            f"{topic_root}/nodes/s1/n1/reported": b"{" * 10000,
            f"{topic_root}/nodes/S1/n1/status": b"{}",
            f"{topic_root}/nodes/s1/n1/status/extra": b"{}",
        }
        for topic, payload in bad.items():
            await op.session.publish(
                __import__("edgefleet_protocol.session", fromlist=["Publication"]).Publication(
                    topic=topic, payload=payload
                )
            )
        await eventually(lambda: orch.stats.rejected >= len(bad), what="rejections")
        # Each drop is reported on orchestrator/events with the topic and a reason (the
        # budget, 20 a second, covers these few).
        for topic in bad:
            event = await obs.wait_json(
                f"{topic_root}/orchestrator/events",
                lambda b, t=topic: b["kind"] == "message-rejected" and b["details"]["topic"] == t,
            )
            assert event.json()["details"]["reason"], topic
        reply = await op.call("nodes")
        assert reply["ok"] and reply["result"]["nodes"] == []


async def test_command_errors_and_idempotent_repeat(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    async with (
        orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        r = await op.call("frobnicate")
        assert (r["ok"], r["error"]["code"]) == (False, "unknown_verb")
        r = await op.call(
            "deploy", manifest={"name": "x", "replicas": 1, "workload": {"runtime": "lisp"}}
        )
        assert (
            r["error"]["code"] == "bad_request"
            and "workload.runtime" in r["error"]["details"]["field"]
        )
        r = await op.call("deploy", manifest={**manifest("y"), "placement": {"max_per_node": 0}})
        assert r["error"]["code"] == "bad_request" and "max_per_node" in r["error"]["message"]
        r = await op.call("app", app="nope")
        assert r["error"]["code"] == "not_found"
        r = await op.call("scale", app="nope", replicas=2)
        assert r["error"]["code"] == "not_found"
        first = await op.call("deploy", request_id="req-1", manifest=manifest("z", replicas=1))
        again = await op.call("deploy", request_id="req-1", manifest=manifest("z", replicas=5))
        assert first == again and first["result"]["action"] == "created"
        assert orch.state.apps["z"].replicas == 1
        r = await op.call("scale", app="z", replicas=4)
        assert r["ok"] and r["result"] == {"app": "z", "replicas": 4, "previous": 1}
        assert json.loads(json.dumps(r))["ok"]
        r = await op.call("delete", app="z")
        assert r["ok"] and "z" not in orch.state.apps
