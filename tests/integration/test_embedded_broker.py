"""The embedded amqtt broker carries what the wire contract needs, for our own Session.

``make demo`` falls back to this broker on machines without mosquitto, so these tests hold
it to the behaviours the demo relies on: the Session's ``auto`` mode lands on MQTT 3.1.1 at
once (even with a will), retained messages reach late wildcard subscribers and an empty
retained payload clears them, a SIGKILLed client's retained will is delivered, and QoS 1
messages all arrive in order. No mosquitto is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator

import pytest
from edgefleet_orchestrator.demo.embedded_broker import (
    BrokerProcess,
    connect_protocol_level,
    neutered_connect_body,
    start_embedded_broker,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Publication, Session


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    broker = start_embedded_broker(tmp_path_factory.mktemp("amqtt"))
    yield broker
    broker.stop()
    assert broker.process.poll() is not None


async def collect(session: Session, count: int, timeout_s: float) -> list[InboundMessage]:
    """Up to ``count`` messages, or fewer if ``timeout_s`` passes first."""
    got: list[InboundMessage] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            async for message in session.messages():
                got.append(message)
                if len(got) == count:
                    break
    return got


def settings(broker: BrokerProcess) -> BrokerSettings:
    return BrokerSettings.from_url(broker.url)  # protocol=auto: try 5, fall back to 3.1.1


@pytest.mark.parametrize(
    ("body", "level"),
    [
        (b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x01a", 4),
        (b"\x00\x04MQTT\x05\xee\x00\x1e\x00\x00\x01a", 5),
        (b"\x00\x06MQIsdp\x03\x02\x00\x3c", 3),
        (b"\x00", None),
        (b"\x00\x04MQT", None),
    ],
)
def test_the_protocol_level_is_read_after_the_protocol_name(body: bytes, level: int | None) -> None:
    assert connect_protocol_level(body) == level


def test_a_neutered_v5_connect_keeps_name_level_and_keepalive_and_drops_the_will() -> None:
    v5_with_will = b"\x00\x04MQTT\x05\xee\x00\x1e\x00" + b"\x00\x01a" + b"\x00\x00\x03w/t\x00\x01x"
    assert neutered_connect_body(v5_with_will) == b"\x00\x04MQTT\x05\x02\x00\x1e\x00\x01x"


async def test_auto_mode_with_a_will_lands_on_311_without_waiting_for_a_timeout(
    embedded: BrokerProcess,
) -> None:
    will = Publication("demo-test/auto/status", b'{"state":"offline"}', qos=1, retain=True)
    session = Session(settings(embedded), client_id="auto-with-will", will=will)
    started = time.monotonic()
    async with session:
        assert await session.wait_connected(8)
        elapsed = time.monotonic() - started
        assert session.protocol == "3.1.1"
    # The v5 attempt is refused at once; a hang would take the Session's 10 s connect timeout.
    assert elapsed < 5, f"fallback to 3.1.1 took {elapsed:.1f} s"


async def test_retained_messages_reach_late_wildcard_subscribers_and_empty_payload_clears(
    embedded: BrokerProcess,
) -> None:
    root = "demo-test/retained"
    async with Session(settings(embedded), client_id="writer") as writer:
        assert await writer.wait_connected(8)
        for node in ("n1", "n2", "n3"):
            assert await writer.publish(
                Publication(f"{root}/nodes/s1/{node}/status", node.encode(), qos=1, retain=True)
            )
        assert await writer.publish(Publication(f"{root}/nodes/s1/n2/status", b"", retain=True))
        assert await writer.publish(
            Publication(f"{root}/apps/a1/status", b"app", qos=1, retain=True)
        )
    async with Session(
        settings(embedded), client_id="late", subscriptions=[f"{root}/nodes/+/+/status"]
    ) as late:
        assert await late.wait_connected(8)
        got = await collect(late, 2, timeout_s=5)
        assert sorted((m.topic, m.payload, m.retain) for m in got) == [
            (f"{root}/nodes/s1/n1/status", b"n1", True),
            (f"{root}/nodes/s1/n3/status", b"n3", True),
        ]
        assert await collect(late, 1, timeout_s=0.5) == []  # n2 was cleared, apps not matched


async def test_a_new_client_gets_no_retained_messages_for_other_clients_subscriptions(
    embedded: BrokerProcess,
) -> None:
    root = "demo-test/leak"
    async with Session(settings(embedded), client_id="leak-writer") as writer:
        assert await writer.wait_connected(8)
        assert await writer.publish(Publication(f"{root}/a/desired", b"a", qos=1, retain=True))
    async with Session(
        settings(embedded), client_id="leak-wide", subscriptions=[f"{root}/#"]
    ) as wide:
        assert await wide.wait_connected(8)
        assert [m.payload for m in await collect(wide, 1, timeout_s=5)] == [b"a"]
        async with Session(
            settings(embedded), client_id="leak-narrow", subscriptions=[f"{root}/b/desired"]
        ) as narrow:
            assert await narrow.wait_connected(8)
            assert await collect(narrow, 1, timeout_s=1.0) == []


WILL_CLIENT = """
import asyncio, sys
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

async def main():
    topic = sys.argv[2]
    will = Publication(topic, b'{"state":"offline"}', qos=1, retain=True)
    session = Session(BrokerSettings.from_url(sys.argv[1]), client_id="doomed", will=will)
    session.start()
    assert await session.wait_connected(8)
    assert await session.publish(Publication(topic, b'{"state":"online"}', qos=1, retain=True))
    print("up", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_clients_retained_will_is_delivered_and_kept(
    embedded: BrokerProcess,
) -> None:
    topic = "demo-test/will/nodes/s1/doomed/status"
    async with Session(settings(embedded), client_id="watcher", subscriptions=[topic]) as watcher:
        assert await watcher.wait_connected(8)
        doomed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WILL_CLIENT, embedded.url, topic, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert doomed.stdout is not None
            async with asyncio.timeout(15):
                assert (await doomed.stdout.readline()).strip() == b"up"
            online = await collect(watcher, 1, timeout_s=5)
            assert [(m.topic, m.payload) for m in online] == [(topic, b'{"state":"online"}')]
            doomed.kill()  # no DISCONNECT: the broker must publish the will
            offline = await collect(watcher, 1, timeout_s=5)
            assert [m.payload for m in offline] == [b'{"state":"offline"}']
        finally:
            if doomed.returncode is None:
                doomed.kill()
            await doomed.wait()
    async with Session(settings(embedded), client_id="after", subscriptions=[topic]) as after:
        assert await after.wait_connected(8)
        kept = await collect(after, 1, timeout_s=5)
        assert (kept[0].payload, kept[0].retain) == (b'{"state":"offline"}', True)


async def test_qos1_messages_all_arrive_in_order(embedded: BrokerProcess) -> None:
    topic = "demo-test/qos1/events"
    async with (
        Session(settings(embedded), client_id="reader", subscriptions=[topic]) as reader,
        Session(settings(embedded), client_id="sender") as sender,
    ):
        assert await reader.wait_connected(8)
        assert await sender.wait_connected(8)
        for i in range(300):
            assert await sender.publish(Publication(topic, str(i).encode(), qos=1))
        got = await collect(reader, 300, timeout_s=15)
        assert [int(m.payload) for m in got] == list(range(300))
        assert {m.qos for m in got} == {1}
