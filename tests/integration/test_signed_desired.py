"""Signed desired state through the REAL agent process (simulated runtime) with a trust
anchor: forged, unsigned, other-node, replayed and huge-generation documents are refused
with an event while the running workloads stay exactly as they were; a rotated key is
accepted only through a valid endorsement chain, and survives a restart of the agent."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edgefleet_cli.brokerconfig import trust as keys
from edgefleet_orchestrator.security.signer import Signer, load_signer, sign_document
from edgefleet_protocol import Desired, DesiredWorkload, encode
from test_agent_harness import AgentProcess, Watcher, all_running, workload


def signer_of(key: Any, chain: tuple[Any, ...] = ()) -> Signer:
    return load_signer(keys.key_pem(key), keys.chain_json(list(chain)))


def doc(node: str, generation: int, *workloads: DesiredWorkload, issued_at: float | None = None
        ) -> Desired:  # fmt: skip
    return Desired(node=node, site="s1", generation=generation,
                   issued_at=time.time() if issued_at is None else issued_at,
                   workloads=list(workloads))  # fmt: skip


def signed(document: Desired, signer: Signer) -> bytes:
    return encode(sign_document(document, signer))


def table(agent: AgentProcess) -> dict[str, Any]:
    rows = json.loads((agent.state_dir / "simulated-workloads.json").read_text())
    return {row["name"]: row["runtime_id"] for row in rows}


async def test_refused_documents_leave_workloads_alone_and_rotation_needs_a_chain(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    root, orch = keys.new_key(), keys.new_key()
    anchor = tmp_path / "trust-anchor.json"
    anchor.write_bytes(keys.anchor_json(root, orch))
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root,
                         extra=["--trust-anchor", str(anchor)])  # fmt: skip
    node, desired, events = agent.node, agent.topic("desired"), agent.topic("events")
    real = signer_of(orch)
    first = doc(node, 1, workload("w1"))
    second = doc(node, 2, workload("w1"), workload("w2"))
    async with Watcher(broker_url, topic_root) as watcher:

        async def refused(payload: bytes, field: str) -> dict[str, Any]:
            mark = watcher.mark()
            await watcher.publish(desired, payload)
            # Each refusal names its field (a stale generation is its own kind).
            return await watcher.wait_for(
                events,
                lambda b: (
                    b["kind"] in ("desired-rejected", "desired-stale")
                    and b["details"].get("field", "generation") == field
                ),
                after=mark,
            )

        await watcher.publish(desired, signed(first, real))
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"w1"}))
            await watcher.publish(desired, signed(second, real))
            await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w2"}))
            running = table(agent)

            thief = signer_of(keys.new_key())
            forged = sign_document(doc(node, 3, workload("evil")), thief)
            forged = forged.model_copy(update={"key_id": real.key_id})
            await refused(encode(forged), "signature")
            await refused(encode(doc(node, 3, workload("evil"))), "signature")
            await refused(signed(doc(node, 3, workload("evil")), thief), "key_id")
            await refused(signed(doc("other-node", 3, workload("evil")), real), "node")
            huge = encode(doc(node, 2**53 - 1, workload("evil")))
            await refused(huge, "signature")
            replay = await refused(signed(first, real), "generation")
            assert replay["kind"] == "desired-stale"
            await refused(signed(doc(node, 2, workload("evil")), real), "generation")
            await refused(signed(doc(node, 3, workload("w1"), issued_at=1.0), real), "issued_at")
            assert table(agent) == running  # same instances: nothing stopped or started

            # The fleet is not pinned: the real next generation still applies.
            await watcher.publish(desired, signed(doc(node, 3, workload("w1")), real))
            await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b["observed_generation"] == 3 and all_running({"w1"})(b),
            )

            # Rotation: a new key endorsed by an untrusted key is refused ...
            new = keys.new_key()
            bad_chain = signer_of(new, (keys.endorse(new, by=keys.new_key()),))
            await refused(signed(doc(node, 4, workload("evil")), bad_chain), "key_id")
            # ... endorsed by the key in force, it is adopted, and the old key is refused.
            good = signer_of(new, (keys.endorse(new, by=orch),))
            mark = watcher.mark()
            await watcher.publish(desired, signed(doc(node, 4, workload("w1"), workload("w4")),
                                                  good))  # fmt: skip
            await watcher.wait_for(events, lambda b: b["kind"] == "key-rotated", after=mark)
            await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w4"}))
            await refused(signed(doc(node, 5, workload("evil")), real), "key_id")
        finally:
            agent.stop()

        # The held state (generation, issue time, key in force) survives a restart.
        running = table(agent)
        try:
            mark = watcher.mark()
            agent.start()
            # The retained document is the old key's refused one: refused again on start.
            replayed = await watcher.wait_for(
                events, lambda b: b["kind"] == "desired-rejected", after=mark
            )
            assert replayed["details"]["field"] == "key_id"
            await refused(signed(doc(node, 6, workload("evil")), real), "key_id")
            await refused(signed(first, good), "generation")
            assert table(agent) == running
            assert "evil" not in agent.log()
        finally:
            agent.stop()


async def test_the_orchestrator_signs_and_a_provisioned_agent_runs_what_it_deploys(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    from harness.fleet import Operator, running_orchestrator

    root, orch = keys.new_key(), keys.new_key()
    anchor = tmp_path / "trust-anchor.json"
    anchor.write_bytes(keys.anchor_json(root, orch))
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root,
                         extra=["--trust-anchor", str(anchor)])  # fmt: skip
    manifest = {"name": "signed", "replicas": 1, "workload": {"runtime": "simulated"}}
    async with (
        Watcher(broker_url, topic_root) as watcher,
        running_orchestrator(broker_url, topic_root, tmp_path / "orch", signer=signer_of(orch)),
        Operator(broker_url, topic_root) as op,
    ):
        try:
            agent.start()
            await watcher.wait_for(agent.topic("capabilities"))
            reply = await op.call("deploy", manifest=manifest)
            assert reply["ok"], reply
            await watcher.wait_for(
                agent.topic("reported"), lambda b: len(b.get("workloads", {})) == 1 and
                all_running(set(b["workloads"]))(b), timeout=20,
            )  # fmt: skip
            published = watcher.bodies(agent.topic("desired"))[-1]
            assert published["key_id"] == keys.public_ref(orch).key_id
            assert len(published["signature"]) == 88  # base64 of 64 bytes
        finally:
            agent.stop()
