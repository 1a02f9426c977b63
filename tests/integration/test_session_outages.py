"""The session through outages (issue #13): a short cut after several cuts costs about its
own length, a broker that kicks at once is not hammered, an outage never leaves an
``auto`` session on MQTT 3.1.1, and an outage is one WARNING line, not one per retry."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Session
from edgefleet_protocol.wire import Backoff, ReconnectSchedule
from harness.mosquitto import Mosquitto
from harness.proxy import Proxy


async def connected(session: Session, timeout: float = 10.0) -> None:
    assert await session.wait_connected(timeout), "session did not connect"


async def disconnected(session: Session, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while session.connected.is_set():
            await asyncio.sleep(0.01)


async def test_a_short_cut_after_several_cuts_costs_about_its_own_length(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy(mosquitto.port)
    port = await proxy.start()
    settings = BrokerSettings.from_url(f"mqtt://127.0.0.1:{port}")
    caplog.set_level(logging.INFO, logger="edgefleet.session")  # as an agent runs
    session = Session(settings, client_id="cut-agent", rng=random.Random(7))
    session.start()
    try:
        await connected(session)
        loop = asyncio.get_running_loop()
        for cut_s in (3.0, 2.0, 2.0):  # long enough to escalate the old attempt counter
            await asyncio.sleep(2.5)  # stays up a while: a stable connection
            proxy.cut()
            await disconnected(session)
            await asyncio.sleep(cut_s)
            proxy.restore()
            await connected(session)
        await asyncio.sleep(2.5)
        proxy.cut()
        cut_at = loop.time()
        await disconnected(session)
        await asyncio.sleep(1.2)
        proxy.restore()
        await connected(session)
        offline_s = loop.time() - cut_at
        assert offline_s < 3.0, f"a 1.2 s cut kept the session away {offline_s:.1f} s"
        ours = [r for r in caplog.records if r.name.startswith("edgefleet.session")]
        warnings = [r for r in ours if r.levelno >= logging.WARNING]
        assert len(warnings) == 4, [r.getMessage() for r in warnings]  # one per outage
        assert all(r.levelno == logging.WARNING for r in warnings)
        assert session.stats.outages == 4
    finally:
        await session.close()
        await proxy.close()


def test_a_broker_that_drops_us_at_once_is_not_hammered() -> None:
    schedule = ReconnectSchedule(Backoff(base_s=0.25, cap_s=30.0), stable_after_s=2.0)
    rng = random.Random(1)
    now = 0.0
    delays = []
    for _ in range(11):
        schedule.connected(now)
        now += 0.05  # kicked 50 ms after the CONNACK
        schedule.lost(now)
        delay = schedule.next_delay(rng)
        delays.append(delay)
        now += delay
    assert max(delays[:4]) <= 0.25, delays  # four short connections: still link cuts
    assert delays[-1] >= 4.0, delays  # a streak of them: escalates like one long outage
    schedule.connected(now)
    schedule.lost(now + 2.0)  # a connection that stayed up: a fresh outage
    assert schedule.next_delay(rng) <= 0.25


def test_a_cut_right_after_a_reconnect_is_retried_at_once() -> None:
    # The chaos suite's link cuts: reconnected, cut again 0.2 s later, twice — the third
    # outage must still start at the shortest delay (the stable-only rule waited 6.4 s).
    schedule = ReconnectSchedule(Backoff(base_s=0.25, cap_s=30.0), stable_after_s=2.0)
    rng = random.Random(2)
    schedule.connected(0.0)
    schedule.lost(10.0)
    for _ in range(4):
        schedule.next_delay(rng)  # a 2 s cut: four failed attempts
    now = 12.0
    for _ in range(2):
        schedule.connected(now)
        schedule.lost(now + 0.2)
        assert schedule.next_delay(rng) <= 0.25
        now += 1.0


async def test_an_outage_never_leaves_an_auto_session_on_mqtt_311(mosquitto: Mosquitto) -> None:
    proxy = Proxy(mosquitto.port)
    port = await proxy.start()
    settings = BrokerSettings.from_url(f"mqtt://127.0.0.1:{port}?protocol=auto")
    fast = Backoff(base_s=0.05, cap_s=0.2)
    session = Session(settings, client_id="v5-agent", backoff=fast, rng=random.Random(3))
    session.start()
    try:
        await connected(session)
        assert session.protocol == "5"
        for _ in range(3):
            # The broker is away behind the gateway: every CONNECT is read and dropped.
            # It returns right after a v5 CONNECT was dropped — the moment the old rule
            # tried 3.1.1 at once and then stayed on it.
            dropped: list[int] = []

            def back_after_two_v5(level: int, dropped: list[int] = dropped) -> None:
                dropped.append(level)
                if dropped.count(5) >= 2:
                    proxy.drop_connects = False

            proxy.on_drop = back_after_two_v5
            proxy.drop_connects = True
            proxy.cut()
            await disconnected(session)
            proxy.restore()
            await connected(session, timeout=15)
            assert session.protocol == "5", f"fell back to 3.1.1 after dropped {dropped}"
    finally:
        await session.close()
        await proxy.close()
