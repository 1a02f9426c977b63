"""Compliance reports end to end: a provisioned agent (trust anchor, local policy) reports
itself compliant under the orchestrator's signed documents; a node that reports drift and
observes a generation the orchestrator never issued is counted non-compliant in the fleet
summary with both reasons; ``edgefleet compliance`` shows the fleet from the broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from edgefleet_cli.brokerconfig import trust as keys
from edgefleet_orchestrator.security.signer import load_signer
from edgefleet_protocol import ComplianceReport, Reported, encode
from edgefleet_protocol.policy import load_policy, policy_hash
from harness.fleet import Operator, running_orchestrator
from test_agent_harness import AgentProcess, Watcher

CLI = Path(sys.executable).parent / "edgefleet"
POLICY = "allow: {privileged: false}\nresources: {max_memory_mb: 512}\n"


async def test_the_fleet_counts_drift_and_generations_it_never_issued(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    root, orch = keys.new_key(), keys.new_key()
    anchor = tmp_path / "trust-anchor.json"
    anchor.write_bytes(keys.anchor_json(root, orch))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    extra = ["--trust-anchor", str(anchor), "--policy-file", str(policy)]
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, extra=extra)
    manifest = {"name": "meter", "replicas": 1, "workload": {"runtime": "simulated"}}
    summary_topic = f"{topic_root}/fleet/summary"
    async with (
        Watcher(broker_url, topic_root) as watcher,
        running_orchestrator(broker_url, topic_root, tmp_path / "orch",
                             signer=load_signer(keys.key_pem(orch))),
        Operator(broker_url, topic_root) as op,
    ):  # fmt: skip
        try:
            agent.start()
            await watcher.wait_for(agent.topic("capabilities"))
            assert (await op.call("deploy", manifest=manifest))["ok"]
            mine = await watcher.wait_for(
                agent.topic("compliance"),
                lambda b: b.get("generation") is not None and b["generation"] >= 1,
                timeout=20,
            )
            assert mine["compliant"] is True
            assert mine["signed"] is True
            assert mine["key_id"] == keys.public_ref(orch).key_id
            assert mine["policy_hash"] == policy_hash(load_policy(POLICY))
            assert mine["agent_version"]

            # A rogue node: drift in its own report, and a generation nobody issued.
            rogue = f"{topic_root}/nodes/s1/rogue"
            report = ComplianceReport(node="rogue", site="s1", ts=time.time(),
                                      agent_version="0.1.0", compliant=False,
                                      drift=["miner: running but not desired"])  # fmt: skip
            await watcher.publish(f"{rogue}/compliance", encode(report))
            reported = Reported(node="rogue", site="s1", observed_generation=99, session=1,
                                ts=time.time())  # fmt: skip
            await watcher.publish(f"{rogue}/reported", encode(reported))
            summary = await watcher.wait_for(
                summary_topic,
                lambda b: len(b.get("noncompliant", {}).get("rogue", [])) == 2,
                timeout=20,
            )
            assert summary["nodes_noncompliant"] == 1
            assert summary["noncompliant"] == {
                "rogue": [
                    "miner: running but not desired",
                    "observed generation 99 is above any issued (0)",
                ]
            }

            shown = await asyncio.to_thread(
                subprocess.run,
                [str(CLI), "compliance", "--broker", broker_url, "--root", topic_root,
                 "-o", "json"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            data = json.loads(shown.stdout)
            assert data["nodes_noncompliant"] == 1
            by_node = {row["node"]: row for row in data["nodes"]}
            assert by_node[agent.node]["compliant"] is True
            assert by_node["rogue"]["compliant"] is False
            assert "observed generation 99 is above any issued (0)" in by_node["rogue"]["reasons"]
            # Clear the rogue's retained messages (the topic root is this test's own).
            await watcher.publish(f"{rogue}/compliance", b"")
            await watcher.publish(f"{rogue}/reported", b"")
        finally:
            agent.stop()
