"""Issue #12 defect 1 on a real mosquitto: no node message, however hostile, stops the
orchestrator or its scheduling of the other nodes — also after a restart while the hostile
retained messages are still on the broker."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefleet_protocol import Capabilities
from edgefleet_protocol.session import Publication
from harness.fleet import FakeNode, Operator, Watcher, eventually, running_orchestrator

# The repro from the issue, under this test's topic root.
REPRO = (
    b'{"v":1,"node":"gw-q","site":"dev","arch":"x86_64","cpu_cores":1e308,"memory_mb":4096,'
    b'"disk_mb":1000,"runtimes":["process"]}'
)


def caps(**numbers: Any) -> bytes:
    body = {
        "v": 1,
        "node": "gw-q",
        "site": "dev",
        "arch": "x86_64",
        "cpu_cores": 2,
        "memory_mb": 4096,
        "disk_mb": 1000,
        "runtimes": ["simulated"],
        **numbers,
    }
    return json.dumps(body).encode()


def hostile(root: str) -> list[tuple[str, bytes, bool]]:
    """(topic, payload, retained) for every kind of node message."""
    node = f"{root}/nodes/dev/gw-q"
    return [
        (f"{node}/capabilities", REPRO, True),
        (f"{node}/capabilities", caps(memory_mb=1e30), True),
        (f"{node}/capabilities", caps(disk_mb=1e30), True),
        (f"{node}/capabilities", caps(cpu_cores=1e400), True),
        (f"{node}/capabilities", caps(network={"bandwidth_mbps": 1e308}), True),
        (
            f"{node}/status",
            b'{"v":1,"node":"gw-q","site":"dev","state":"online","session":1e30,"since":1}',
            True,
        ),
        (
            f"{node}/status",
            b'{"v":1,"node":"gw-q","site":"dev","state":"online","session":1,"since":1e308}',
            True,
        ),
        (
            f"{node}/telemetry",
            b'{"v":1,"node":"gw-q","site":"dev","ts":1,'
            b'"latency_ms":{"cam":1e308},"metrics":{"m":-1e300},"load1":1e300}',
            False,
        ),
        (
            f"{node}/telemetry",
            b'{"v":1,"node":"gw-q","site":"dev","ts":1,"workloads":{"w":{"cpu_pct":1e308}}}',
            False,
        ),
        (
            f"{node}/reported",
            b'{"v":1,"node":"gw-q","observed_generation":1e30,"session":1,"ts":1}',
            True,
        ),
        (
            f"{node}/reported",
            b'{"v":1,"node":"gw-q","observed_generation":1,"session":1,'
            b'"ts":1,"workloads":{"w":{"spec_hash":"x","state":"running","since":1,'
            b'"restarts":1e30}}}',
            True,
        ),
    ]


def app(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": 2,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.5, "memory_mb": 128}},
    }


async def test_hostile_node_messages_never_stop_scheduling_also_after_a_restart(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    good = [FakeNode(broker_url, topic_root, f"gw{i}", "dev") for i in range(2)]
    for n in good:
        await n.start()
    messages = hostile(topic_root)
    async with Operator(broker_url, topic_root) as op:
        # The hostile node is online (a valid status), with only hostile retained data.
        await op.session.publish(
            Publication(
                topic=f"{topic_root}/nodes/dev/gw-q/status",
                payload=b'{"v":1,"node":"gw-q","site":"dev","state":"online","session":1,'
                b'"since":1}',
                retain=True,
            )
        )
        for topic, payload, retained in messages:
            if retained:  # the last retained one per topic is what a restart replays
                await op.session.publish(Publication(topic=topic, payload=payload, retain=True))
        await op.session.publish(
            Publication(
                topic=f"{topic_root}/nodes/dev/gw-q/capabilities", payload=REPRO, retain=True
            )
        )

        async with running_orchestrator(broker_url, topic_root, tmp_path) as orch:
            for topic, payload, retained in messages:
                await op.session.publish(Publication(topic=topic, payload=payload, retain=retained))
            await eventually(
                lambda: orch.stats.rejected >= len(messages), what="every hostile message refused"
            )
            reply = await op.call("deploy", manifest=app("one"))
            assert reply["ok"], reply
            await eventually(lambda: all(n.workloads for n in good), what="both good nodes used")
            reasons = set(orch.stats.rejections_by_reason)
            assert any("cpu_cores" in r for r in reasons), reasons

        # Restart with the retained 1e308 capabilities still on the broker.
        async with running_orchestrator(broker_url, topic_root, tmp_path) as orch:
            await eventually(lambda: orch.stats.rejected >= 1, what="the retained repro refused")
            reply = await op.call("deploy", manifest=app("two"))
            assert reply["ok"], reply
            await eventually(
                lambda: all(any(w.startswith("two-") for w in n.workloads) for n in good),
                what="the second app on both good nodes",
            )
            nodes = (await op.call("nodes"))["result"]["nodes"]
            assert {r["node"] for r in nodes} >= {"gw0", "gw1"}
            assert not orch.passes.isolated  # the bounds refused it at the edge
    for n in good:
        await n.stop()


async def test_a_node_whose_data_breaks_the_pass_is_isolated_with_an_event_and_others_scheduled(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    """The second line behind the bounds: data no bound caught (put straight into the live
    registry, as a missed bound would let it in) isolates that node, says so on
    orchestrator/events, and the service keeps scheduling the rest."""
    good = [FakeNode(broker_url, topic_root, f"gw{i}", "dev") for i in range(2)]
    bad = FakeNode(broker_url, topic_root, "gw-q", "dev")
    for n in [*good, bad]:
        await n.start()
    events = Watcher(broker_url, [f"{topic_root}/orchestrator/events"])
    await events.start()
    seen: list[dict[str, Any]] = []
    events.hooks.append(lambda _t, body: seen.append(body))
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        nodes = orch.state.registry.nodes
        await eventually(
            lambda: len(nodes) == 3 and all(r.capabilities for r in nodes.values()),
            what="three nodes described",
        )

        def poisoned_and_isolated() -> bool:
            """(Re)poison gw-q until a pass isolated it: its own hello may still replace
            the record with good capabilities once."""
            record = nodes["gw-q"]
            assert record.capabilities is not None
            if record.capabilities.cpu_cores != 1e308:
                caps = dict(record.capabilities) | {"cpu_cores": 1e308}
                bad_caps = Capabilities.model_construct(**caps)
                orch.state.registry._nodes["gw-q"] = replace(record, capabilities=bad_caps)
                orch._dirty.set()
            return any(e.get("kind") == "node-isolated" for e in seen)

        await eventually(poisoned_and_isolated, what="node-isolated")
        reply = await op.call("deploy", manifest=app("one"))
        assert reply["ok"], reply
        await eventually(lambda: all(n.workloads for n in good), what="both good nodes used")
        event = next(e for e in seen if e.get("kind") == "node-isolated")
        assert event["node"] == "gw-q"
        assert "cpu_cores" in event["details"]["reason"]
        assert not bad.workloads
        assert (await op.call("apps"))["ok"]
    await events.stop()
    for n in [*good, bad]:
        await n.stop()
