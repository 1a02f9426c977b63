"""Desired documents through the REAL agent process (simulated runtime): retained ones are
applied after (re)connect, stale ones ignored with an event, bad ones rejected with an
event while every workload is left exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_agent_harness import (
    AgentProcess,
    Watcher,
    all_running,
    desired_doc,
    workload,
    workloads_of,
)


def table(agent: AgentProcess) -> dict[str, Any]:
    rows = json.loads((agent.state_dir / "simulated-workloads.json").read_text())
    return {row["name"]: row for row in rows}


async def test_a_retained_desired_document_is_applied_and_reported(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    async with Watcher(broker_url, topic_root) as watcher:
        doc = desired_doc(agent.node, 3, workload("w1"), workload("w2"))
        await watcher.publish(agent.topic("desired"), doc)
        try:
            agent.start()
            reported = await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w2"}))
            assert reported["observed_generation"] == 3
            assert reported["session"] == 1
            sent = json.loads(doc)["workloads"]
            assert {n: w["spec_hash"] for n, w in workloads_of(reported).items()} == {
                w["name"]: w["spec_hash"] for w in sent
            }
        finally:
            agent.stop()


async def test_changes_apply_and_an_unchanged_workload_is_never_touched(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    desired = agent.topic("desired")
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(desired, desired_doc(agent.node, 1, workload("keep"), workload("go")))
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"keep", "go"}))
            keep_before = table(agent)["keep"]
            bigger = workload("keep", resources={"memory_mb": 128})
            await watcher.publish(desired, desired_doc(agent.node, 2, bigger, workload("new")))
            reported = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b["observed_generation"] == 2 and all_running({"keep", "new"})(b),
            )
            keep_after = table(agent)["keep"]
            # Only resources changed: updated live, same instance, no restart.
            assert keep_after["runtime_id"] == keep_before["runtime_id"]
            assert keep_after["restarts"] == 0
            assert keep_after["memory_mb"] == 128
            assert reported["workloads"]["keep"]["spec_hash"] == bigger.spec_hash
            assert "go" not in table(agent)
        finally:
            agent.stop()


async def test_a_lower_generation_is_ignored_with_an_event(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 5, workload("w1")))
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"w1"}))
            mark = watcher.mark()
            await watcher.publish(
                agent.topic("desired"), desired_doc(agent.node, 4, workload("other"))
            )
            event = await watcher.wait_for(
                agent.topic("events"), lambda b: b["kind"] == "desired-stale", after=mark
            )
            assert event["details"] == {"generation": 4, "current": 5}
            assert set(table(agent)) == {"w1"}
        finally:
            agent.stop()


BAD_DOCUMENTS = [
    ("not json", lambda node: b"{not json", "payload", "not valid JSON"),
    (
        "fails the schema",
        lambda node: json.dumps({"v": 1, "node": node, "issued_at": 1.0}).encode(),
        "generation",
        "is required",
    ),
    (
        "names another node",
        lambda node: desired_doc("someone-else", 9, workload("x")),
        "node",
        "someone-else",
    ),
    (
        "needs a runtime this agent does not run",
        lambda node: desired_doc(node, 9, workload("x", runtime="docker", image="busybox")),
        "workloads.0.spec.runtime",
        "does not run",
    ),
    (
        "has a bad workload id",
        lambda node: json.dumps(
            {"v": 1, "node": node, "generation": 9, "issued_at": 1.0,
             "workloads": [{"name": "Bad/Name#", "app": "a", "spec_hash": "h",
                            "spec": {"runtime": "simulated"}}]}
        ).encode(),
        "workloads.0.name",
        "not a valid",
    ),
    (
        "is oversized",
        lambda node: json.dumps(
            {"v": 1, "node": node, "generation": 9, "issued_at": 1.0, "pad": "x" * 300_000}
        ).encode(),
        "payload",
        "exceeds the limit",
    ),
]  # fmt: skip


async def test_bad_documents_are_rejected_with_events_and_workloads_stay_untouched(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 2, workload("w1")))
        try:
            agent.start()
            good = await watcher.wait_for(agent.topic("reported"), all_running({"w1"}))
            before = table(agent)
            for label, make, field, words in BAD_DOCUMENTS:
                mark = watcher.mark()
                await watcher.publish(agent.topic("desired"), make(agent.node), retain=False)
                event = await watcher.wait_for(
                    agent.topic("events"), lambda b: b["kind"] == "desired-rejected", after=mark
                )
                assert event["details"]["field"] == field, label
                assert words in event["details"]["reason"], (label, event)
                assert event["level"] == "warning"
            assert table(agent) == before
            assert agent.proc is not None and agent.proc.poll() is None
            latest = watcher.bodies(agent.topic("reported"))[-1]
            assert latest["workloads"] == good["workloads"]
            assert latest["observed_generation"] == 2
        finally:
            agent.stop()


async def test_a_desired_document_published_while_the_agent_is_down_applies_on_restart(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, workload("a")))
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"a"}))
            agent.kill9()
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 2, workload("b")))
            mark = watcher.mark()
            agent.start()
            reported = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b["session"] == 2 and all_running({"b"})(b),
                after=mark,
            )
            assert reported["observed_generation"] == 2
            assert set(table(agent)) == {"b"}
        finally:
            agent.stop()


@pytest.mark.parametrize("kind", ["exec"])
async def test_a_failing_health_check_reports_unhealthy_and_restarts_the_workload(
    tmp_path: Path, broker_url: str, topic_root: str, kind: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    sick = workload(
        "sick",
        env={"EDGEFLEET_SIM_HEALTH": "fail"},
        health={"kind": kind, "command": ["check"], "interval_s": 0.3, "failure_threshold": 2},
    )
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(
            agent.topic("desired"), desired_doc(agent.node, 1, sick, workload("ok"))
        )
        try:
            agent.start()
            unhealthy = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b.get("workloads", {}).get("sick", {}).get("state") == "unhealthy",
            )
            assert "exit code 1" in unhealthy["workloads"]["sick"]["message"]
            assert unhealthy["workloads"]["ok"]["state"] == "running"
            await watcher.wait_for(
                agent.topic("events"), lambda b: b["kind"] == "workload-restarted"
            )
            restarted = await watcher.wait_for(
                agent.topic("reported"), lambda b: b["workloads"]["sick"]["restarts"] >= 1
            )
            assert restarted["workloads"]["ok"]["restarts"] == 0
        finally:
            agent.stop()
