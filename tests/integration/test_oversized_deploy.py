"""Issue #12 defect 2 on a real mosquitto: a deploy whose per-node desired document would
exceed the agents' limit (100 KB of env x 15 replicas on one node) is refused with a
reason, nothing is published, and the orchestrator stays connected and answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefleet_orchestrator.store.sqlite import open_store
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, encode, spec_hash
from harness.fleet import FakeNode, Operator, Watcher, eventually, running_orchestrator


def fat(replicas: int) -> dict[str, Any]:
    return {
        "name": "fat",
        "replicas": replicas,
        "workload": {
            "runtime": "simulated",
            "resources": {"cpu": 0.01, "memory_mb": 1},
            "env": {"BLOB": "x" * 100_000},
        },
    }


async def test_an_oversized_deploy_is_refused_and_the_orchestrator_stays_up(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    node = FakeNode(broker_url, topic_root, "gw1", "s1")
    await node.start()
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        await eventually(lambda: "gw1" in orch.state.registry.nodes, what="the node")
        connects = orch.session.stats.connects
        reply = await op.call("deploy", manifest=fat(15))
        assert not reply["ok"], reply
        assert reply["error"]["code"] == "too_large"
        assert reply["error"]["details"]["node"] == "gw1"
        assert "gw1" in reply["error"]["message"]
        # Not stored, not published; the orchestrator answers the next command at once.
        listed = await op.call("apps")
        assert listed["ok"] and listed["result"]["apps"] == []
        # Two fit (about 200 KB): accepted and published; scaling to 15 is refused.
        assert (await op.call("deploy", manifest=fat(2)))["ok"]
        await eventually(lambda: len(node.workloads) == 2, what="two replicas published")
        scaled = await op.call("scale", app="fat", replicas=15)
        assert scaled["error"]["code"] == "too_large", scaled
        assert (await op.call("app", app="fat"))["result"]["manifest"]["replicas"] == 2
        assert orch.session.connected.is_set()
        assert orch.session.stats.connects == connects  # never dropped by the broker
    await node.stop()


async def test_an_oversized_stored_document_is_withheld_not_published_in_a_loop(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    """A store written before the size checks may hold a document over the broker's packet
    limit: republishing it on connect got the orchestrator dropped, again and again."""
    spec = WorkloadSpec(runtime="simulated", env={"BLOB": "x" * 1_200_000})
    doc = Desired(
        node="gw1",
        site="s1",
        generation=3,
        issued_at=1.0,
        workloads=[DesiredWorkload(name="fat-0", app="fat", spec=spec, spec_hash=spec_hash(spec))],
    )
    store = open_store(tmp_path)
    store.put_generation("gw1", "s1", 3, "sha256:0", encode(doc).decode())
    store.close()
    events = Watcher(broker_url, [f"{topic_root}/orchestrator/events"])
    await events.start()
    seen: list[dict[str, Any]] = []
    events.hooks.append(lambda _t, body: seen.append(body))
    desired = Watcher(broker_url, [f"{topic_root}/nodes/+/+/desired"])
    await desired.start()
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        await eventually(
            lambda: any(e.get("kind") == "document-withheld" for e in seen), what="withheld"
        )
        assert (await op.call("apps"))["ok"]
        assert orch.session.stats.connects == 1
        assert desired.latest == {}
    await desired.stop()
    await events.stop()
