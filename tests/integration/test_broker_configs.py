"""The documented configs in ``broker-config/`` start and do what README.md says.

Each runs in a real mosquitto 2.0 with only the sandbox changes a test machine needs
(free loopback port, temp persistence and log, and install paths pointing at a set the
generator just wrote); every other line is the file as shipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Backoff, InboundMessage, Publication, Session
from harness.mosquitto import Mosquitto, dev_config, free_port, start_mosquitto
from harness.production import (
    for_test,
    generate_set,
    installed,
    override,
    start_generated_broker,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "broker-config"
INSTALL = "/etc/mosquitto/edgefleet/"
R = "edgefleet/v1"
FAST = Backoff(base_s=0.05, cap_s=0.3)


@pytest.fixture(autouse=True)
def _broker_tier(mosquitto: Mosquitto) -> None:
    """Use the session broker fixture only for its tier gating (skip locally, fail in CI)."""


def tls_settings(set_dir: Path, broker: Mosquitto, user: str, password: object) -> BrokerSettings:
    return BrokerSettings(
        host="127.0.0.1",
        port=broker.port,
        username=user,
        password=str(password),
        tls=True,
        ca_file=str(set_dir / "ca.crt"),
        cert_file=str(set_dir / "clients" / f"{user}.crt"),
        key_file=str(set_dir / "clients" / f"{user}.key"),
        protocol="5",
    )


@contextlib.asynccontextmanager
async def connected(
    settings: BrokerSettings, subscriptions: tuple[str, ...] = ()
) -> AsyncIterator[Session]:
    session = Session(
        settings,
        client_id=f"cfg-{uuid.uuid4().hex[:8]}",
        subscriptions=subscriptions,
        backoff=FAST,
    )
    async with session:
        assert await session.wait_connected(5), session.stats.last_error
        yield session


async def collect_until(
    session: Session, topic: str, payload: bytes | None = None, timeout: float = 10.0
) -> list[InboundMessage]:
    seen: list[InboundMessage] = []
    async with asyncio.timeout(timeout):
        async for msg in session.messages():
            if msg.topic == topic and (payload is None or msg.payload == payload):
                return seen
            seen.append(msg)
    raise AssertionError("unreachable")


def directives(config: str) -> list[str]:
    return [ln.strip() for ln in config.splitlines() if ln.strip() and not ln.startswith("#")]


# -- dev.conf ----------------------------------------------------------------------------


def test_dev_conf_listens_on_loopback_only() -> None:
    listeners = [
        d for d in directives((CONFIGS / "dev.conf").read_text()) if d.startswith("listener")
    ]
    assert listeners == ["listener 1883 127.0.0.1"]


def test_dev_conf_is_the_config_the_test_harness_runs() -> None:
    # The harness's session broker must behave like the documented dev broker.
    sandbox = {"listener", "log_dest"}

    def core(config: str) -> set[str]:
        return {d for d in directives(config) if d.split()[0] not in sandbox}

    assert core((CONFIGS / "dev.conf").read_text()) == core(dev_config(1883, Path("/tmp")))


async def test_dev_conf_starts_and_serves_anonymous_clients(tmp_path: Path) -> None:
    port = free_port()
    config = for_test(
        (CONFIGS / "dev.conf").read_text(), port=port, workdir=tmp_path, persistence=False
    )
    broker = start_mosquitto(tmp_path, config=config, port=port)
    try:
        settings = BrokerSettings.from_url(f"{broker.url}?protocol=3.1.1")
        topic = f"{R}/fleet/summary"
        async with connected(settings, (topic,)) as session:
            assert await session.publish(Publication(topic, b"hello", qos=1))
            seen = await collect_until(session, topic, b"hello", timeout=5)
        assert seen == []
    finally:
        broker.stop()


# -- production.conf ---------------------------------------------------------------------


BIG = b"x" * (600 * 1024)  # above the 512 KiB the message-size limit must allow


async def test_production_conf_serves_tls_and_keeps_a_big_retained_message_across_a_restart(
    tmp_path: Path,
) -> None:
    set_dir = tmp_path / "set"
    users = generate_set(set_dir, "--node", "s1/n1")
    config = installed((CONFIGS / "production.conf").read_text(), {INSTALL: set_dir})
    workdir = tmp_path / "broker"
    topic = f"{R}/nodes/s1/n1/desired"
    broker = start_generated_broker(set_dir, workdir, config=config)
    try:
        orch = tls_settings(set_dir, broker, "orchestrator", users["orchestrator"]["password"])
        async with connected(orch) as session:
            assert await session.publish(Publication(topic, BIG, qos=1, retain=True))
    finally:
        broker.stop()  # SIGTERM: mosquitto writes its persistence file on the way out
    assert list((workdir / "data").iterdir()), "persistence true wrote nothing"
    # Same port, same data dir: the retained desired document must survive the restart.
    again = start_mosquitto(
        workdir, config=(workdir / "mosquitto.conf").read_text(), port=broker.port, tls=True
    )
    try:
        agent = tls_settings(set_dir, again, "s1.n1", users["s1.n1"]["password"])
        async with connected(agent, (topic,)) as session:
            async with asyncio.timeout(5):
                msg = await anext(session.messages())
        assert (msg.topic, msg.payload, msg.retain) == (topic, BIG, True)
    finally:
        again.stop()


RETAINED_REPLAY = 3000  # well past mosquitto's default queue (1000) plus inflight (20)


async def test_production_limits_let_a_large_retained_replay_through_whole(tmp_path: Path) -> None:
    """An orchestrator restarting against a big fleet subscribes to every node topic and
    gets one retained message per topic at once; with mosquitto's defaults most of a
    replay this size is dropped (see README.md), with production.conf none is."""
    set_dir = tmp_path / "set"
    users = generate_set(set_dir)
    config = installed((CONFIGS / "production.conf").read_text(), {INSTALL: set_dir})
    broker = start_generated_broker(set_dir, tmp_path / "broker", config=config)
    try:
        orch = tls_settings(set_dir, broker, "orchestrator", users["orchestrator"]["password"])
        async with connected(orch) as writer:
            for i in range(RETAINED_REPLAY):
                pub = Publication(f"{R}/nodes/s1/n{i}/reported", b"x" * 200, qos=1, retain=True)
                assert await writer.publish(pub)
        # MQTT 3.1.1, so the broker's own max_inflight_messages governs the flow.
        reader = dataclasses.replace(orch, protocol="3.1.1")
        topics: set[str] = set()
        async with connected(reader, (f"{R}/nodes/+/+/reported",)) as session:
            async with asyncio.timeout(20):
                async for msg in session.messages():
                    topics.add(msg.topic)
                    if len(topics) == RETAINED_REPLAY:
                        break
        assert len(topics) == RETAINED_REPLAY
    finally:
        broker.stop()


# -- bridge.conf -------------------------------------------------------------------------


async def test_bridge_conf_carries_a_sites_topics_both_ways_and_no_further(
    tmp_path: Path,
) -> None:
    # Central: the fleet's broker, knowing the site's bridge as `bridge@site-a`.
    central_set = tmp_path / "central"
    central_users = generate_set(central_set, "--node", "site-a/gw1", "--bridge", "site-a")
    central = start_generated_broker(central_set, tmp_path / "central-broker")
    # Site: its own set (own CA) for its gateways, plus the site's side of the bridge as
    # the central set wrote it (bridges/site-a/: bridge.conf with the bridge's password,
    # central/ with the central CA and the bridge's cert and key) — only paths and the
    # address change. The documented bridge.conf is this rendering for an example site.
    site_set = tmp_path / "site"
    site_users = generate_set(site_set, "--node", "site-a/gw1")
    side = central_set / "bridges" / "site-a"
    bridge_conf = installed(
        (side / "bridge.conf").read_text(),
        {INSTALL: site_set, f"{INSTALL}central/": side / "central"},
    )
    assert f"remote_password {central_users['bridge@site-a']['password']}" in bridge_conf
    bridge_conf = override(bridge_conf, {"address": f"address 127.0.0.1:{central.port}"})
    site = start_generated_broker(site_set, tmp_path / "site-broker", config=bridge_conf)
    try:
        orch = tls_settings(
            central_set, central, "orchestrator", central_users["orchestrator"]["password"]
        )
        agent = tls_settings(site_set, site, "site-a.gw1", site_users["site-a.gw1"]["password"])
        local = tls_settings(site_set, site, "orchestrator", site_users["orchestrator"]["password"])
        desired = f"{R}/nodes/site-a/gw1/desired"
        status = f"{R}/nodes/site-a/gw1/status"
        async with (
            connected(orch, (f"{R}/#",)) as hub,
            connected(agent, (desired,)) as gateway,
            connected(local, (f"{R}/#",)) as site_watch,
        ):
            # Out: the gateway's status reaches the central orchestrator once the bridge is up.
            async with asyncio.timeout(15):
                while True:
                    assert await gateway.publish(Publication(status, b"online", qos=1, retain=True))
                    with contextlib.suppress(TimeoutError):
                        await collect_until(hub, status, b"online", timeout=0.5)
                        break
            # In: its desired document; another site's never enters this site.
            other = f"{R}/nodes/site-b/gw9/desired"
            assert await hub.publish(Publication(other, b"not yours", qos=1, retain=True))
            assert await hub.publish(Publication(f"{R}/services/web", b"svc", qos=1, retain=True))
            assert await hub.publish(Publication(desired, b"gen-1", qos=1, retain=True))
            assert await collect_until(gateway, desired, b"gen-1") == []
            seen_at_site = await collect_until(site_watch, desired, b"gen-1")
            assert (f"{R}/services/web", b"svc") in {(m.topic, m.payload) for m in seen_at_site}
            assert other not in {m.topic for m in seen_at_site}
            # A compromised site cannot forge a desired document upstream: the site-local
            # admin publishes one; no `out` line carries desired documents (and the central
            # ACL would drop one from bridge@site-a anyway).
            assert await site_watch.publish(Publication(desired, b"forged", qos=1, retain=True))
            assert await gateway.publish(Publication(status, b"marker", qos=1))
            seen_central = await collect_until(hub, status, b"marker")
            assert b"forged" not in {m.payload for m in seen_central}
    finally:
        site.stop()
        central.stop()
