"""A manifest's secret never leaves the node's own desired document (#12, done-when): on the
generated production broker, an account that may read the whole tree subscribes to ``#``
while an operator deploys a manifest with an ``env`` value, the orchestrator places it on a
node and answers, and the audit trail records it. The value may appear only in the command
that carried it, in that node's ``desired`` document, and in the reply to the operator who
asked for the app, in her own reply subtree — never in events (#12 defect 4: every reply
used to be echoed there), status or any other reply.

The all-reading account (``auditor``) is added to the generated ACL for this test, with a
client certificate from the set's own CA: the orchestrator's account cannot be used twice
at once, as the broker binds the client id to the user name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from edgefleet_cli.brokerconfig.certs import Issued, make_client_cert
from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Session
from harness.fleet import FakeNode, Operator, eventually
from harness.mosquitto import Mosquitto
from harness.production import generate_set, start_generated_broker

R = "edgefleet/v1"
SECRET = "env-secret-" + uuid.uuid4().hex


def add_auditor(set_dir: Path) -> None:
    """An account that reads everything under the root, certificate signed by the set's CA."""
    ca_cert = x509.load_pem_x509_certificate((set_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((set_dir / "ca.key").read_bytes(), None)
    ca = Issued(ca_cert, ca_key)  # type: ignore[arg-type]
    auditor = make_client_cert(ca, "auditor", now=dt.datetime.now(dt.UTC))
    (set_dir / "clients" / "auditor.crt").write_bytes(auditor.cert_pem())
    (set_dir / "clients" / "auditor.key").write_bytes(auditor.key_pem())
    with (set_dir / "acl").open("a") as acl:
        acl.write(f"\n# role: test auditor\nuser auditor\ntopic read {R}/#\n")


def url(set_dir: Path, port: int, user: str) -> str:
    clients = set_dir / "clients"
    query = f"ca={quote(str(set_dir / 'ca.crt'))}&cert={quote(str(clients / f'{user}.crt'))}"
    return f"mqtts://{user}@127.0.0.1:{port}?{query}&key={quote(str(clients / f'{user}.key'))}"


@pytest.fixture
def production(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Path, Mosquitto]]:
    del mosquitto  # the session broker keeps the tier's skip/fail gating
    out = tmp_path / "set"
    generate_set(out, "--node", "s1/n1", "--operator", "alice", "--viewer", "grafana")
    add_auditor(out)
    broker = start_generated_broker(out, tmp_path / "broker")
    yield out, broker
    broker.stop()


async def test_a_manifest_secret_appears_only_in_the_nodes_desired_document(
    production: tuple[Path, Mosquitto], tmp_path: Path
) -> None:
    set_dir, broker = production
    seen: list[InboundMessage] = []
    ear = Session(
        BrokerSettings.from_url(url(set_dir, broker.port, "auditor")),
        client_id="auditor",
        subscriptions=["#"],
    )

    async def pump() -> None:
        async for message in ear.messages():
            seen.append(message)

    orchestrator = Orchestrator(
        OrchestratorConfig(
            broker=BrokerSettings.from_url(url(set_dir, broker.port, "orchestrator")),
            data_dir=tmp_path / "orch",
            settle_s=0.3,
            tick_s=0.2,
        )
    )
    stop = asyncio.Event()
    node = FakeNode(url(set_dir, broker.port, "s1.n1"), R, "n1", "s1")
    async with ear:
        assert await ear.wait_connected(5), ear.stats.last_error
        listener = asyncio.create_task(pump())
        running = asyncio.create_task(orchestrator.run(stop))
        try:
            assert await orchestrator.session.wait_connected(10)
            await node.start()
            async with Operator(url(set_dir, broker.port, "alice"), R, operator="alice") as alice:
                manifest = {
                    "name": "vault",
                    "replicas": 1,
                    "workload": {"runtime": "simulated", "env": {"API_TOKEN": SECRET}},
                }
                reply = await alice.call("deploy", manifest=manifest, timeout_s=15)
                assert reply["ok"], reply
                await eventually(lambda: node.workloads == {"vault-0"}, what="placed on n1")
                assert (await alice.call("apps", timeout_s=15))["ok"]
                # Alice may read her own app back (env included) — in her own replies only.
                shown = await alice.call("app", app="vault", request_id="show-1", timeout_s=15)
                assert SECRET in str(shown)
                assert (await alice.call("audit", timeout_s=15))["ok"]
                await eventually(
                    lambda: any(m.topic == f"{R}/apps/vault/status" for m in seen),
                    what="the app status",
                )
        finally:
            stop.set()
            await running
            await node.stop()
            listener.cancel()
    carrying = {m.topic for m in seen if SECRET.encode() in m.payload}
    assert f"{R}/nodes/s1/n1/desired" in carrying
    allowed = {
        f"{R}/nodes/s1/n1/desired",  # the one document that must carry it
        f"{R}/commands/alice/deploy",  # the command that brought it
        f"{R}/replies/alice/show-1",  # alice reading her app back, in her own subtree
    }
    assert carrying <= allowed, carrying
    kinds = {m.topic.split("/")[2] for m in seen}
    assert {"orchestrator", "replies", "apps", "nodes", "commands"} <= kinds  # all seen
