"""Sealed secrets end to end with real processes: `edgefleet secret set` (the real CLI),
the orchestrator re-sealing per node, a real agent opening the secret into its workload's
environment. The value is readable inside the workload and absent, in clear, from every
message on the broker (a client subscribed to `#`), from the store files of both sides and
from the logs; a box sealed for another node's key is refused with an event while the
workload keeps running."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.sealing import public_text, seal
from edgefleet_protocol.session import InboundMessage, Session
from harness.fleet import Operator, eventually, running_orchestrator
from test_agent_harness import (
    AgentProcess,
    Watcher,
    kill_markers,
    pids_running,
    unique_marker,
)

CLI = Path(sys.executable).parent / "edgefleet"


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


async def test_a_secret_reaches_its_workload_and_nowhere_else_in_clear(
    tmp_path: Path, broker_url: str, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    value = f"s3cr3t-{uuid.uuid4().hex}"
    out = tmp_path / "seen-by-workload"
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="process")
    marker = unique_marker()
    script = f'printf %s "$DB_PASSWORD" | sha256sum > {out}; exec sleep {marker}'
    manifest = {
        "name": "db-client",
        "replicas": 1,
        "workload": {"runtime": "process", "command": ["sh", "-c", script],
                     "secrets": [{"name": "db-password", "env": "DB_PASSWORD"}]},
    }  # fmt: skip
    everything: list[InboundMessage] = []
    sniffer = Session(BrokerSettings.from_url(broker_url), client_id=f"all-{uuid.uuid4().hex[:6]}",
                      subscriptions=["#"])  # fmt: skip

    async def sniff() -> None:
        async for message in sniffer.messages():
            everything.append(message)

    sniffer.start()
    assert await sniffer.wait_connected(5)
    sniffing = asyncio.create_task(sniff())
    orch_dir = tmp_path / "orch"
    try:
        async with (
            Watcher(broker_url, topic_root) as watcher,
            running_orchestrator(broker_url, topic_root, orch_dir,
                                 sealing_key=X25519PrivateKey.generate()),
            Operator(broker_url, topic_root) as op,
        ):  # fmt: skip
            agent.start()
            caps = await watcher.wait_for(agent.topic("capabilities"), timeout=20)
            assert caps["sealing_key"]
            assert (await op.call("deploy", manifest=manifest))["ok"]
            # Not set yet: the document cannot carry it, and the agent says why.
            refused = await watcher.wait_for(
                agent.topic("events"),
                lambda b: b["kind"] == "desired-rejected" and b["details"]["field"] == "secrets",
                timeout=20,
            )
            assert "db-password" in refused["details"]["reason"]

            shown = await asyncio.to_thread(
                subprocess.run,
                [str(CLI), "secret", "set", "db-password", "--broker", broker_url,
                 "--root", topic_root],
                input=value.encode(), capture_output=True, timeout=60,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            assert value.encode() not in shown.stdout + shown.stderr

            await eventually(lambda: out.exists() and out.stat().st_size > 0, 30.0,
                             "the workload reading its secret")  # fmt: skip
            digest = hashlib.sha256(value.encode()).hexdigest()
            assert out.read_text().split()[0] == digest
            reported = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: any(w["state"] == "running" for w in b["workloads"].values()),
            )
            (name,) = reported["workloads"]

            # A box sealed for another key: refused as a whole, the workload stays.
            other_key = public_text(X25519PrivateKey.generate())
            box = seal(b"x", name="db-password", recipient=other_key)
            secrets = [{"name": "db-password", "env": "DB_PASSWORD", "sealed": box}]
            spec = WorkloadSpec.model_validate({**manifest["workload"], "secrets": secrets})
            forged = Desired(node=agent.node, site="s1", generation=99, issued_at=time.time(),
                             workloads=[DesiredWorkload(name=name, app="db-client", spec=spec,
                                                        spec_hash=spec_hash(spec))])  # fmt: skip
            mark = watcher.mark()
            await watcher.publish(agent.topic("desired"), forged.model_dump_json().encode())
            wrong = await watcher.wait_for(
                agent.topic("events"),
                lambda b: b["kind"] == "desired-rejected" and b["details"]["field"] == "secrets",
                after=mark,
            )
            assert "does not open with this key" in wrong["details"]["reason"]
            assert len(pids_running(marker)) == 1  # the workload was not touched
            assert out.read_text().split()[0] == digest
            await watcher.publish(agent.topic("desired"), b"")  # clear the forged retained doc
    finally:
        agent.stop()
        sniffing.cancel()
        await sniffer.close()
        kill_markers(marker)

    secret = value.encode()
    leaks = [m.topic for m in everything if secret in m.payload]
    assert everything and not leaks, leaks
    stored = files_under(orch_dir, agent.state_dir)
    assert any(p.name.startswith("orchestrator.db") for p in stored)
    assert any(p.name == "agent-store.json" for p in stored)
    assert [p for p in stored if secret in p.read_bytes()] == []
    assert secret not in agent.log().encode()
    assert value not in caplog.text
