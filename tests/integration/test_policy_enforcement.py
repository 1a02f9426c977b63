"""Compliance policies, enforced twice, with real processes: the orchestrator's admission
refuses a manifest listing every rule it breaks, and a gateway's own policy refuses a
correctly signed document asking for a command it does not allow, while the process it
runs keeps running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgefleet_cli.brokerconfig import trust as keys
from edgefleet_orchestrator.security.signer import load_signer, sign_document
from edgefleet_protocol import Desired, encode
from edgefleet_protocol.policy import load_policy
from harness.fleet import Operator, running_orchestrator
from test_agent_harness import (
    AgentProcess,
    Watcher,
    all_running,
    kill_markers,
    pids_running,
    sleeper,
    unique_marker,
    workload,
)

POLICY = """
commands:
  allow: [sleep]
allow:
  privileged: false
resources: {max_memory_mb: 256}
required_labels: [owner]
"""


@pytest.fixture
def marker() -> Iterator[str]:
    mark = unique_marker()
    yield mark
    kill_markers(mark)


async def test_admission_refuses_a_manifest_listing_every_broken_rule(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    manifest: dict[str, Any] = {
        "name": "shell",
        "replicas": 1,
        "workload": {"runtime": "process", "command": ["/bin/sh", "-c", "sleep 60"],
                     "resources": {"memory_mb": 1024}},
    }  # fmt: skip
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path / "orch",
                             policy=load_policy(POLICY)) as orch,
        Operator(broker_url, topic_root) as op,
    ):  # fmt: skip
        reply = await op.call("deploy", manifest=manifest)
        assert not reply["ok"]
        assert reply["error"]["code"] == "policy_violation"
        assert [v.split(":")[0] for v in reply["error"]["details"]["violations"]] == [
            "commands.allow",
            "resources.max_memory_mb",
            "required_labels",
        ]
        assert "shell" not in orch.state.apps
        manifest["workload"] = {"runtime": "process", "command": ["sleep", "60"]}
        manifest["labels"] = {"owner": "ops"}
        assert (await op.call("deploy", manifest=manifest))["ok"]


async def test_a_gateway_policy_refuses_a_signed_document_and_keeps_what_runs(
    tmp_path: Path, broker_url: str, topic_root: str, marker: str
) -> None:
    root, orch = keys.new_key(), keys.new_key()
    anchor = tmp_path / "trust-anchor.json"
    anchor.write_bytes(keys.anchor_json(root, orch))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    extra = ["--trust-anchor", str(anchor), "--policy-file", str(policy)]
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="process",
                         extra=extra)  # fmt: skip
    signer = load_signer(keys.key_pem(orch))

    def signed(generation: int, *workloads: Any) -> bytes:
        doc = Desired(node=agent.node, site="s1", generation=generation, issued_at=time.time(),
                      workloads=list(workloads))  # fmt: skip
        return encode(sign_document(doc, signer))

    keep = workload("keep", runtime="process", command=sleeper(marker))
    shell = workload("shell", runtime="process", command=["/bin/sh", "-c", f"sleep {marker}"])
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), signed(1, keep))
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"keep"}), timeout=20)
            before = pids_running(marker)
            assert len(before) == 1
            mark = watcher.mark()
            await watcher.publish(agent.topic("desired"), signed(2, keep, shell))
            event = await watcher.wait_for(
                agent.topic("events"),
                lambda b: b["kind"] == "desired-rejected" and b["details"]["field"] == "policy",
                after=mark,
            )
            assert "shell: commands.allow: command /bin/sh is not allowed" in event["message"]
            assert pids_running(marker) == before
            assert watcher.bodies(agent.topic("reported"))[-1]["observed_generation"] == 1
        finally:
            agent.stop()
