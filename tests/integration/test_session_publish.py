"""A session's single publishes on the cheap outbound path (:mod:`edgefleet_protocol.
mqtt_outbound`), against a real mosquitto of the test's own that the test pauses
(SIGSTOP): the timeout a single publish needs, and the in-flight window it respects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.mqtt_outbound import NOT_SENT, Outbound
from edgefleet_protocol.session import Backoff, InboundMessage, Publication, Session
from harness.mosquitto import Mosquitto, start_mosquitto

FAST = Backoff(base_s=0.05, cap_s=0.5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    own = start_mosquitto(tmp_path / "broker")
    try:
        yield own
    finally:
        if own.process.poll() is None:
            os.kill(own.process.pid, signal.SIGCONT)
        own.stop()


@contextlib.contextmanager
def paused(broker: Mosquitto) -> Iterator[None]:
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)


def outbound_of(session: Session) -> Outbound:
    outbound = session._outbound
    assert outbound is not None
    return outbound


async def payloads(reader: Session, count: int) -> list[bytes]:
    got: list[InboundMessage] = []
    async with asyncio.timeout(15):
        while len(got) < count:
            got.extend(await reader.batch())
    return [m.payload for m in got]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_a_single_publish_gives_up_at_its_timeout_and_a_late_puback_is_harmless(
    broker: Mosquitto, topic_root: str, protocol: str
) -> None:
    settings = BrokerSettings.from_url(f"{broker.url}?protocol={protocol}")
    topic = f"{topic_root}/one"
    async with (
        Session(settings, client_id="one-reader", subscriptions=[topic]) as reader,
        Session(settings, client_id="one-writer", backoff=FAST) as writer,
    ):
        assert await reader.wait_connected(5) and await writer.wait_connected(5)
        outbound = outbound_of(writer)
        with paused(broker):
            late = Publication(topic=topic, payload=b"late", qos=1)
            outbound.timeout_s = 0.3
            assert await outbound.publish_one(late, window=10) == NOT_SENT
            assert outbound._waiting == {}  # nothing left waiting for that PUBACK
        # The broker took it once running again (at least once); its PUBACK finds nobody.
        assert await payloads(reader, 1) == [b"late"]
        assert await writer.publish(Publication(topic=topic, payload=b"next", qos=1))
        assert await payloads(reader, 1) == [b"next"]
        assert writer.stats.connects == 1 and writer.connected.is_set()


async def test_single_publishes_wait_for_room_under_the_window_and_keep_their_order(
    broker: Mosquitto, topic_root: str
) -> None:
    settings = BrokerSettings.from_url(broker.url)
    topic = f"{topic_root}/window"
    async with (
        Session(settings, client_id="win-reader", subscriptions=[topic]) as reader,
        Session(settings, client_id="win-writer") as writer,
    ):
        assert await reader.wait_connected(5) and await writer.wait_connected(5)
        outbound = outbound_of(writer)
        pubs = [Publication(topic=topic, payload=b"%d" % n, qos=1) for n in range(3)]
        with paused(broker):
            tasks = [asyncio.create_task(outbound.publish_one(p, window=2)) for p in pubs]
            for _ in range(20):  # every task runs until it waits (the broker is stopped)
                await asyncio.sleep(0)
            assert len(outbound._waiting) == 2  # the third waits for room, unsent
            assert not any(t.done() for t in tasks)
        assert await asyncio.gather(*tasks) == [0, 0, 0]
        assert await payloads(reader, 3) == [b"0", b"1", b"2"]


async def test_a_lost_connection_fails_a_single_publish_at_once(
    broker: Mosquitto, topic_root: str
) -> None:
    """Not after the 10 s timeout: the session fails what waits when the connection ends."""
    settings = BrokerSettings.from_url(broker.url)
    async with Session(settings, client_id="lost-writer", backoff=FAST) as writer:
        assert await writer.wait_connected(5)
        pub = Publication(topic=f"{topic_root}/lost", payload=b"x", qos=1)
        os.kill(broker.process.pid, signal.SIGSTOP)
        waiting = asyncio.create_task(writer.publish(pub))
        for _ in range(20):  # the publish is on the wire, awaiting its PUBACK
            await asyncio.sleep(0)
        assert len(outbound_of(writer)._waiting) == 1
        broker.kill()  # the kernel closes the broker's sockets
        async with asyncio.timeout(5):
            assert await waiting is False
        assert writer.stats.publish_failures == 1 and writer.stats.published == 0
