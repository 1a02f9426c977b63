"""The generated production set, enforced by a real mosquitto over TLS.

One broker for the module, started from the files ``edgefleet broker config`` writes
(only the listener, persistence and log paths are moved into the sandbox). Every client
verifies the broker's certificate against the generated CA and presents its own client
certificate.

Denied publishes are not visible in return codes (MQTT 3.1.1 acknowledges them as usual;
aiomqtt ignores MQTT 5 reason codes), so every "cannot" is proved by delivery: a
privileged observer subscribed to the whole tree, then a barrier — a marker the observer
publishes itself after the denied PUBLISH was acknowledged. The broker had already
decided about the denied message before acknowledging it, so had it been delivered it
would have reached the observer ahead of the marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Backoff, InboundMessage, Publication, Session
from harness.mosquitto import Mosquitto
from harness.production import generate_set, start_generated_broker

R = "edgefleet/v1"
FAST = Backoff(base_s=0.05, cap_s=0.3)


@dataclass(frozen=True)
class GeneratedSet:
    path: Path
    users: dict[str, dict[str, Any]]
    broker: Mosquitto
    client_certs: bool = True

    def settings(
        self,
        username: str | None,
        *,
        password: str | None = None,
        protocol: str = "5",
        client_cert: str | None = None,
    ) -> BrokerSettings:
        """Settings for ``username`` (its own password and certificate unless overridden)."""
        entry = self.users[username] if username else {}
        cert_user = client_cert or username or "orchestrator"
        if not self.client_certs:
            return BrokerSettings(
                host="127.0.0.1",
                port=self.broker.port,
                username=username,
                password=password if password is not None else entry.get("password"),
                tls=True,
                ca_file=str(self.path / "ca.crt"),
                protocol=protocol,  # type: ignore[arg-type]
            )
        return BrokerSettings(
            host="127.0.0.1",
            port=self.broker.port,
            username=username,
            password=password if password is not None else entry.get("password"),
            tls=True,
            ca_file=str(self.path / "ca.crt"),
            cert_file=str(self.path / "clients" / f"{cert_user}.crt"),
            key_file=str(self.path / "clients" / f"{cert_user}.key"),
            protocol=protocol,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[GeneratedSet]:
    # Depending on the session `mosquitto` fixture keeps the tier's skip/fail gating.
    del mosquitto
    out = tmp_path_factory.mktemp("generated") / "set"
    nodes = ["--node", "s1/n1", "--node", "s1/n2", "--node", "s2/n1"]
    people = ["--operator", "alice", "--operator", "bob", "--viewer", "grafana"]
    users = generate_set(out, *nodes, *people)
    broker = start_generated_broker(out, tmp_path_factory.mktemp("prod-broker"))
    yield GeneratedSet(out, users, broker)
    broker.stop()


@contextlib.asynccontextmanager
async def connected(
    settings: BrokerSettings,
    name: str,
    subscriptions: tuple[str, ...] = (),
    *,
    client_id: str | None = None,
) -> AsyncIterator[Session]:
    session = Session(
        settings,
        client_id=client_id or f"{name}-{uuid.uuid4().hex[:8]}",
        subscriptions=subscriptions,
        backoff=FAST,
    )
    async with session:
        assert await session.wait_connected(5), session.stats.last_error
        yield session


class Observer:
    """The orchestrator identity, subscribed to everything, with a delivery barrier."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def barrier(self) -> list[InboundMessage]:
        """Everything delivered since the last barrier (retained replays included)."""
        marker = f"{R}/barrier/{uuid.uuid4().hex}"
        assert await self.session.publish(Publication(marker, b"", qos=1))
        return await collect_until(self.session, marker)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        assert await self.session.publish(Publication(topic, payload, qos=1, retain=retain))


async def collect_until(
    session: Session, topic: str, payload: bytes | None = None, timeout: float = 5.0
) -> list[InboundMessage]:
    """Messages received before the first one on ``topic`` (with ``payload``, if given)."""
    seen: list[InboundMessage] = []
    async with asyncio.timeout(timeout):
        async for msg in session.messages():
            if msg.topic == topic and (payload is None or msg.payload == payload):
                return seen
            seen.append(msg)
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def observer(fleet: GeneratedSet) -> AsyncIterator[Observer]:
    async with connected(fleet.settings("orchestrator"), "observer", (f"{R}/#",)) as session:
        watcher = Observer(session)
        await watcher.barrier()  # drain retained state left by earlier tests
        yield watcher


async def refused(settings: BrokerSettings) -> str:
    """Connect and return why the broker refused; fails if it let the client in."""
    session = Session(settings, client_id=f"refused-{uuid.uuid4().hex[:8]}", backoff=FAST)
    async with session:
        async with asyncio.timeout(5):
            # No event marks a refusal, so poll (under the deadline above).
            while session.stats.last_error is None and not session.connected.is_set():
                await asyncio.sleep(0.02)
        assert session.stats.connects == 0, "the broker accepted a client it should refuse"
        return session.stats.last_error or ""


def topics(messages: list[InboundMessage]) -> set[str]:
    return {m.topic for m in messages}


def node(site: str, name: str, kind: str) -> str:
    return f"{R}/nodes/{site}/{name}/{kind}"


# -- agents ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_an_agent_publishes_its_own_telemetry_and_status(
    fleet: GeneratedSet, protocol: str
) -> None:
    async with (
        observer(fleet) as obs,
        connected(fleet.settings("s1.n1", protocol=protocol), "agent") as agent,
    ):
        for kind in ("telemetry", "status", "reported", "events", "capabilities"):
            assert await agent.publish(Publication(node("s1", "n1", kind), b"{}", qos=1))
        seen = await obs.barrier()
    assert topics(seen) == {
        node("s1", "n1", kind)
        for kind in ("telemetry", "status", "reported", "events", "capabilities")
    }


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_an_agent_cannot_publish_for_another_node_nor_desired_nor_commands(
    fleet: GeneratedSet, protocol: str
) -> None:
    forbidden = [
        node("s1", "n2", "status"),
        node("s1", "n2", "telemetry"),
        node("s2", "n1", "status"),
        node("s1", "n1", "desired"),
        node("s1", "n2", "desired"),
        f"{R}/commands/deploy",
        f"{R}/commands/s1.n1/deploy",
        f"{R}/fleet/summary",
        f"{R}/services/web",
        f"{R}/orchestrator/status",
    ]
    async with (
        observer(fleet) as obs,
        connected(fleet.settings("s1.n1", protocol=protocol), "agent") as agent,
    ):
        for topic in forbidden:
            await agent.publish(Publication(topic, b'{"forged": true}', qos=1))
        # Proof the observer would have seen them: the agent's own topic still flows.
        assert await agent.publish(Publication(node("s1", "n1", "status"), b"{}", qos=1))
        seen = await obs.barrier()
    assert topics(seen) == {node("s1", "n1", "status")}


async def test_a_refused_publish_in_a_batch_is_counted_and_the_rest_taken(
    fleet: GeneratedSet,
) -> None:
    """Session.publish_many (the orchestrator's fan-out) reads MQTT 5 PUBACK reasons."""
    pubs = [
        Publication(node("s1", "n1", "status"), b"{}", qos=1),
        Publication(node("s1", "n2", "status"), b"{}", qos=1),
        Publication(node("s1", "n1", "telemetry"), b"{}", qos=1),
    ]
    async with connected(fleet.settings("s1.n1", protocol="5"), "agent") as agent:
        assert await agent.publish_many(pubs) == 2  # no subscriber (reason 0x10) is taken
        assert (agent.stats.publishes_refused, agent.stats.publish_failures) == (1, 1)
        assert agent.last_refusal is not None
        assert agent.last_refusal[0] == node("s1", "n2", "status")
        assert "authori" in agent.last_refusal[1].lower()


async def test_a_refused_single_publish_returns_false_and_names_the_refusal(
    fleet: GeneratedSet,
) -> None:
    """Session.publish (every agent and CLI message) reads the MQTT 5 PUBACK reason too."""
    async with connected(fleet.settings("s1.n1", protocol="5"), "agent") as agent:
        assert not await agent.publish(Publication(node("s1", "n2", "status"), b"{}", qos=1))
        assert (agent.stats.publishes_refused, agent.stats.publish_failures) == (1, 1)
        assert agent.last_refusal is not None
        assert agent.last_refusal[0] == node("s1", "n2", "status")
        assert "authori" in agent.last_refusal[1].lower()
        assert await agent.publish(Publication(node("s1", "n1", "status"), b"{}", qos=1))
        assert agent.stats.published == 1


async def test_an_agent_reads_its_own_desired_document_and_not_another_nodes(
    fleet: GeneratedSet,
) -> None:
    async with observer(fleet) as obs:
        await obs.publish(node("s1", "n1", "desired"), b"mine", retain=True)
        await obs.publish(node("s1", "n2", "desired"), b"theirs", retain=True)
        filters = (f"{R}/nodes/#", node("s1", "n2", "desired"), f"{R}/#")
        async with connected(fleet.settings("s1.n1"), "agent", filters) as agent:
            await obs.publish(node("s1", "n2", "desired"), b"theirs-live")
            await obs.publish(node("s1", "n2", "events"), b"their-events")
            await obs.publish(f"{R}/orchestrator/events", b"orchestrator-events")
            await obs.publish(f"{R}/commands/alice/deploy", b"a-command")
            await obs.publish(f"{R}/replies/alice/r1", b"a-reply")
            await obs.publish(f"{R}/services/web", b"svc")
            await obs.publish(node("s1", "n1", "desired"), b"end")
            seen = await collect_until(agent, node("s1", "n1", "desired"), b"end")
    # Overlapping filters each replay the retained document, so compare as a set.
    assert {(m.topic, m.payload) for m in seen} == {
        (node("s1", "n1", "desired"), b"mine"),
        (f"{R}/services/web", b"svc"),
    }


# -- authentication ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_fleet(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto
) -> Iterator[GeneratedSet]:
    """A set made with ``--no-require-client-cert``: passwords are the credential there."""
    del mosquitto
    out = tmp_path_factory.mktemp("generated-pw") / "set"
    users = generate_set(out, "--node", "s1/n1", "--node", "s1/n2", "--no-require-client-cert")
    broker = start_generated_broker(out, tmp_path_factory.mktemp("prod-broker-pw"))
    yield GeneratedSet(out, users, broker, client_certs=False)
    broker.stop()


async def test_an_anonymous_client_is_refused(password_fleet: GeneratedSet) -> None:
    reason = await refused(password_fleet.settings(None))
    assert "authori" in reason.lower()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_a_wrong_password_is_refused(password_fleet: GeneratedSet, protocol: str) -> None:
    settings = password_fleet.settings("s1.n1", password="not-the-password", protocol=protocol)
    assert "authori" in (await refused(settings)).lower()


async def test_another_users_password_is_refused(password_fleet: GeneratedSet) -> None:
    other = password_fleet.users["s1.n2"]["password"]
    assert "authori" in (await refused(password_fleet.settings("s1.n1", password=other))).lower()


async def test_the_certificate_is_the_identity_whatever_name_and_password_are_sent(
    fleet: GeneratedSet,
) -> None:
    # alice's certificate with bob's user name and password: the broker takes her CN.
    bob = fleet.users["bob"]["password"]
    as_bob = fleet.settings("bob", password=bob, client_cert="alice")
    async with observer(fleet) as obs, connected(as_bob, "impostor") as session:
        await session.publish(Publication(f"{R}/commands/bob/deploy", b"{}", qos=1))
        assert await session.publish(Publication(f"{R}/commands/alice/deploy", b"{}", qos=1))
        assert topics(await obs.barrier()) == {f"{R}/commands/alice/deploy"}


async def test_no_account_can_take_over_another_accounts_client_id(fleet: GeneratedSet) -> None:
    """A viewer or an operator connecting with an agent's (or the orchestrator's) client id
    must not disconnect it: the broker replaces every client id with the user name."""
    agent_id = "edgefleet-agent-s1-n1"
    async with (
        observer(fleet) as obs,
        connected(fleet.settings("s1.n1"), "agent", client_id=agent_id) as agent,
    ):
        for thief in ("grafana", "alice"):
            for stolen in (agent_id, "s1.n1", "orchestrator", "edgefleet-orchestrator"):
                async with connected(fleet.settings(thief), thief, client_id=stolen):
                    pass
        assert await agent.publish(Publication(node("s1", "n1", "status"), b"{}", qos=1))
        assert topics(await obs.barrier()) == {node("s1", "n1", "status")}
        assert agent.connected.is_set() and agent.stats.connects == 1
        assert obs.session.stats.connects == 1  # the observer is the orchestrator account


def mqtt311_connect(client_id: str, username: str, password: str) -> bytes:
    """A minimal MQTT 3.1.1 CONNECT packet (clean session, user and password)."""

    def utf8(text: str) -> bytes:
        data = text.encode()
        return len(data).to_bytes(2, "big") + data

    body = utf8("MQTT") + bytes([4, 0xC2, 0, 30]) + utf8(client_id) + utf8(username)
    body += utf8(password)
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


def raw_tls_connect(fleet: GeneratedSet, *, with_client_cert: bool) -> bytes:
    """TLS handshake (server verified against the CA) + CONNECT; returns the CONNACK."""
    context = ssl.create_default_context(cafile=str(fleet.path / "ca.crt"))
    if with_client_cert:
        clients = fleet.path / "clients"
        context.load_cert_chain(clients / "s1.n1.crt", clients / "s1.n1.key")
    user = fleet.users["s1.n1"]
    with (
        socket.create_connection(("127.0.0.1", fleet.broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(mqtt311_connect(f"raw-{uuid.uuid4().hex[:8]}", "s1.n1", user["password"]))
        reply = tls.recv(4)
    if not reply:
        raise ConnectionError("the broker closed the connection without a CONNACK")
    return reply


def test_a_client_without_a_certificate_is_refused_at_the_tls_handshake(
    fleet: GeneratedSet,
) -> None:
    # Control: the same raw client with its certificate gets CONNACK "accepted".
    assert raw_tls_connect(fleet, with_client_cert=True) == bytes([0x20, 2, 0, 0])
    # Without one the broker ends the TLS session: an alert ("certificate required"), or a
    # plain close if the CONNECT raced it — never a CONNACK.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        raw_tls_connect(fleet, with_client_cert=False)


# -- operators and viewers ---------------------------------------------------------------


async def test_an_operator_publishes_commands_only_under_its_own_name_and_a_viewer_none(
    fleet: GeneratedSet,
) -> None:
    async with observer(fleet) as obs:
        async with connected(fleet.settings("grafana"), "viewer") as viewer:
            for topic in (
                f"{R}/commands/grafana/apps",
                f"{R}/commands/deploy",
                f"{R}/fleet/summary",
                node("s1", "n1", "status"),
            ):
                await viewer.publish(Publication(topic, b"{}", qos=1))
        assert await obs.barrier() == []
        async with connected(fleet.settings("alice"), "operator") as operator:
            assert await operator.publish(Publication(f"{R}/commands/alice/deploy", b"{}", qos=1))
            for topic in (
                f"{R}/commands/bob/deploy",  # another operator's name
                f"{R}/commands/deploy",  # the accountless topic
                f"{R}/commands/alice/deploy/x",
                node("s1", "n1", "desired"),
            ):
                await operator.publish(Publication(topic, b"{}", qos=1))
        assert topics(await obs.barrier()) == {f"{R}/commands/alice/deploy"}


async def test_a_viewer_reads_the_fleet_summary_and_telemetry_but_not_desired_documents(
    fleet: GeneratedSet,
) -> None:
    async with observer(fleet) as obs:
        await obs.publish(f"{R}/fleet/summary", b"summary", retain=True)
        async with connected(fleet.settings("grafana"), "viewer", (f"{R}/#",)) as viewer:
            await obs.publish(node("s1", "n1", "desired"), b"desired")
            await obs.publish(node("s1", "n1", "telemetry"), b"telemetry")
            await obs.publish(f"{R}/commands/deploy", b"command")
            await obs.publish(node("s1", "n1", "status"), b"status")
            await obs.publish(f"{R}/fleet/summary", b"end")
            seen = await collect_until(viewer, f"{R}/fleet/summary", b"end")
    payloads = {(m.topic, m.payload) for m in seen}
    assert (f"{R}/fleet/summary", b"summary") in payloads
    assert (node("s1", "n1", "status"), b"status") in payloads
    assert (node("s1", "n1", "telemetry"), b"telemetry") in payloads  # dashboards chart it
    assert not {b"desired", b"command"} & {m.payload for m in seen}


async def test_an_operator_reads_its_own_replies_only(fleet: GeneratedSet) -> None:
    async with (
        observer(fleet) as obs,
        connected(fleet.settings("alice"), "operator", (f"{R}/replies/#",)) as alice,
    ):
        await obs.publish(f"{R}/replies/bob/r1", b"for bob")
        await obs.publish(f"{R}/replies/alice/r1", b"for alice")
        seen = await collect_until(alice, f"{R}/replies/alice/r1")
    assert seen == []


# -- logs on demand ------------------------------------------------------------------------


async def test_only_operators_may_ask_an_agent_for_logs(fleet: GeneratedSet) -> None:
    logs = node("s1", "n1", "logs")
    async with connected(fleet.settings("s1.n1"), "agent", (logs,)) as agent:
        async with connected(fleet.settings("grafana"), "viewer") as viewer:
            await viewer.publish(Publication(logs, b"from the viewer", qos=1))
        async with connected(fleet.settings("s1.n2"), "other-agent") as other:
            await other.publish(Publication(logs, b"from another agent", qos=1))
        async with connected(fleet.settings("alice"), "operator") as operator:
            assert await operator.publish(Publication(logs, b"from alice", qos=1))
        seen = await collect_until(agent, logs, b"from alice")
    assert seen == []


async def test_an_agent_sends_log_lines_only_to_replies_about_itself(fleet: GeneratedSet) -> None:
    mine = f"{R}/replies/alice/logs/s1/n1/r1"
    async with observer(fleet) as obs:
        async with connected(fleet.settings("s1.n1"), "agent") as agent:
            for topic in (
                f"{R}/replies/alice/logs/s1/n2/r1",  # another node's stream
                f"{R}/replies/alice/r1",  # a command reply
                f"{R}/apps/web/status",
                mine,
            ):
                await agent.publish(Publication(topic, b"line", qos=1))
        assert topics(await obs.barrier()) == {mine}


async def test_log_lines_reach_the_asking_operator_and_no_other(fleet: GeneratedSet) -> None:
    async with (
        observer(fleet) as obs,
        connected(fleet.settings("bob"), "bob", (f"{R}/replies/#",)) as bob,
        connected(fleet.settings("grafana"), "viewer", (f"{R}/#",)) as viewer,
        connected(fleet.settings("s1.n1"), "agent") as agent,
    ):
        await agent.publish(Publication(f"{R}/replies/alice/logs/s1/n1/r1", b"secret", qos=1))
        await obs.publish(f"{R}/replies/bob/end", b"end")
        await obs.publish(f"{R}/fleet/summary", b"end")
        seen_by_bob = await collect_until(bob, f"{R}/replies/bob/end")
        seen_by_viewer = await collect_until(viewer, f"{R}/fleet/summary", b"end")
    assert b"secret" not in {m.payload for m in seen_by_bob + seen_by_viewer}
