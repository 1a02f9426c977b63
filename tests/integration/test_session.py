"""The MQTT Session against a real mosquitto: will, retained replay, resubscribe after a
broker restart, clean shutdown with a final message, and both protocol versions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from edgefleet_protocol import NodeStatus, TopicKind, Topics, decode
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.mqtt_client import RECEIVE_MAXIMUM
from edgefleet_protocol.session import Backoff, InboundMessage, Publication, Session
from harness.mosquitto import Mosquitto, start_mosquitto

FAST = Backoff(base_s=0.05, cap_s=0.5)


async def next_message(session: Session, timeout: float = 5.0) -> InboundMessage:
    async with asyncio.timeout(timeout):
        async for msg in session.messages():
            return msg
    raise AssertionError("unreachable")


def status(state: str, session_no: int = 1) -> NodeStatus:
    return NodeStatus(node="n1", site="s1", state=state, session=session_no, since=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_retained_message_reaches_a_later_subscriber(
    broker_url: str, topic_root: str, protocol: str
) -> None:
    topics = Topics(topic_root)
    settings = BrokerSettings.from_url(f"{broker_url}?protocol={protocol}")
    async with Session(settings, client_id="writer") as writer:
        assert await writer.wait_connected(5)
        assert writer.protocol == protocol
        topic = topics.node_status("s1", "n1")
        assert await writer.publish_model(TopicKind.NODE_STATUS, topic, status("online"))
    async with Session(settings, client_id="reader", subscriptions=[topic]) as reader:
        msg = await next_message(reader)
    assert msg.retain
    assert decode(NodeStatus, msg.payload).state == "online"


async def test_will_is_published_when_the_connection_dies(broker_url: str, topic_root: str) -> None:
    topics = Topics(topic_root)
    topic = topics.node_status("s1", "n1")
    settings = BrokerSettings.from_url(broker_url + "?keepalive=5")
    will = Publication.of(TopicKind.NODE_STATUS, topic, status("offline", 7))
    async with Session(settings, client_id="watcher", subscriptions=[topic]) as watcher:
        await watcher.wait_connected(5)
        agent = Session(settings, client_id="agent-will", will=will)
        agent.start()
        assert await agent.wait_connected(5)
        # Kill the transport without a DISCONNECT, as a crash or power cut would.
        assert agent._client is not None
        sock = agent._client._client.socket()
        agent._runner.cancel()  # type: ignore[union-attr]
        sock.close()
        msg = await next_message(watcher, timeout=10)
        body = decode(NodeStatus, msg.payload)
        assert (body.state, body.session) == ("offline", 7)
        await agent.close()


async def test_clean_close_publishes_final_messages_and_no_will(
    broker_url: str, topic_root: str
) -> None:
    topics = Topics(topic_root)
    topic = topics.node_status("s1", "n1")
    settings = BrokerSettings.from_url(broker_url)
    will = Publication.of(TopicKind.NODE_STATUS, topic, status("offline", 1))
    async with Session(settings, client_id="watcher2", subscriptions=[topic]) as watcher:
        await watcher.wait_connected(5)
        agent = Session(settings, client_id="agent-clean", will=will)
        agent.start()
        await agent.wait_connected(5)
        final = Publication(topic=topic, payload=json.dumps({"bye": 1}).encode(), retain=True)
        await agent.close([final])
        msg = await next_message(watcher)
        assert json.loads(msg.payload) == {"bye": 1}
        with pytest.raises(TimeoutError):
            await next_message(watcher, timeout=1.0)


async def test_subscriptions_and_on_connect_are_restored_after_broker_restart(
    tmp_path: Path, topic_root: str
) -> None:
    broker = start_mosquitto(tmp_path / "b1")
    topic = f"{topic_root}/x"
    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    settings = BrokerSettings.from_url(broker.url)
    try:
        async with Session(
            settings, client_id="resub", subscriptions=[topic], on_connect=on_connect, backoff=FAST
        ) as session:
            assert await session.wait_connected(5)
            broker.kill()
            await asyncio.sleep(0.3)
            assert not session.connected.is_set()
            assert not await session.publish(Publication(topic=topic, payload=b"{}"))
            broker2 = start_mosquitto(tmp_path / "b2", port=broker.port)
            try:
                assert await session.wait_connected(10)
                async with Session(settings, client_id="pub") as pub:
                    await pub.wait_connected(5)
                    await pub.publish(Publication(topic=topic, payload=b'{"n":1}'))
                msg = await next_message(session)
                assert msg.payload == b'{"n":1}'
                assert connects == 2
            finally:
                broker2.stop()
    finally:
        broker.stop()


async def test_full_queue_drops_qos0_but_keeps_qos1(broker_url: str, topic_root: str) -> None:
    settings = BrokerSettings.from_url(broker_url)
    topic = f"{topic_root}/q"
    async with Session(settings, client_id="small", subscriptions=[topic], queue_size=2) as s:
        await s.wait_connected(5)
        async with Session(settings, client_id="flood") as pub:
            await pub.wait_connected(5)
            for i in range(5):
                await pub.publish(Publication(topic=topic, payload=str(i).encode(), qos=0))
            await pub.publish(Publication(topic=topic, payload=b"last", qos=1))
            await asyncio.sleep(0.5)
        got = [(await next_message(s)).payload for _ in range(3)]
    assert s.stats.dropped_qos0 == 3
    assert got == [b"0", b"1", b"last"]


def test_unused_fixture_type(mosquitto: Mosquitto) -> None:
    assert mosquitto.url.startswith("mqtt://127.0.0.1:")


async def test_auto_mode_gives_up_on_a_silent_v5_connect_quickly() -> None:
    """A 3.1.1-only broker that hangs on an MQTT 5 CONNECT must not stall auto mode."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        session = Session(BrokerSettings.from_url(f"mqtt://127.0.0.1:{port}"), client_id="probe")
        session.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not session._fallback_to_311 and loop.time() - started < 8:
            await asyncio.sleep(0.05)
        assert session._fallback_to_311, "auto mode never tried 3.1.1"
        assert loop.time() - started < 5
        await session.close()
    finally:
        silent.close()


async def test_a_qos1_flood_at_a_busy_reader_stays_bounded_and_loses_nothing(
    broker_url: str, topic_root: str
) -> None:
    """A reader that does not keep up holds at most its queue plus its MQTT 5 Receive
    Maximum: the rest waits at the broker (PUBACKs are held back while the queue is full),
    and all of it arrives, in order, once the reader catches up. aiomqtt's own queue used
    to take everything in, unbounded. (On 3.1.1 the broker's max_inflight_messages is the
    bound; the test broker sets none.)"""
    settings = BrokerSettings.from_url(broker_url)
    topic = f"{topic_root}/flood"
    sent = 3 * RECEIVE_MAXIMUM
    async with (
        Session(settings, client_id="flooded", subscriptions=[topic], queue_size=20) as reader,
        Session(settings, client_id="flooder") as writer,
    ):
        assert await reader.wait_connected(5) and await writer.wait_connected(5)
        for n in range(sent):
            assert await writer.publish(Publication(topic=topic, payload=b"%d" % n, qos=1))
        async with asyncio.timeout(10):  # the broker's window fills, then nothing moves
            while reader.stats.received < 20:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert reader._client is not None
        held = reader.pending() + reader._client._queue.qsize()
        assert 20 <= held <= 20 + RECEIVE_MAXIMUM, f"the session holds {held} of {sent} messages"
        got = []
        async with asyncio.timeout(20):
            while len(got) < sent:
                got.extend(int(m.payload) for m in await reader.batch(50))
        assert got == list(range(sent))
        assert reader.stats.dropped_qos0 == 0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_many_publishes_at_once_arrive_in_order_and_are_counted(
    broker_url: str, topic_root: str, protocol: str
) -> None:
    """publish_many (the desired-document fan-out) with more messages than its window."""
    settings = BrokerSettings.from_url(f"{broker_url}?protocol={protocol}")
    topic = f"{topic_root}/many"
    pubs = [Publication(topic=topic, payload=b"%d" % n, qos=1) for n in range(2500)]
    published: list[Publication] = []
    async with (
        Session(settings, client_id="many-reader", subscriptions=[topic]) as reader,
        Session(settings, client_id="many-writer") as writer,
    ):
        assert await reader.wait_connected(5) and await writer.wait_connected(5)
        writer.on_published = published.append
        assert await writer.publish_many(pubs, window=300) == len(pubs)
        assert writer.stats.published == len(pubs) and published == pubs
        got: list[int] = []
        async with asyncio.timeout(20):
            while len(got) < len(pubs):
                got.extend(int(m.payload) for m in await reader.batch())
        assert got == list(range(len(pubs)))
        assert await writer.publish(Publication(topic=topic, payload=b"single"))  # still fine
        assert (await reader.batch())[0].payload == b"single"
    assert await writer.publish_many(pubs) == 0  # closed: nothing sent, nothing hangs
