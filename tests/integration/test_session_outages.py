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
from edgefleet_protocol.wire import FAST_FOR_S, FAST_RETRY_S, Backoff, ReconnectSchedule
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
    # Through the chaos suite's proxy (a cut resets every connection and every new one).
    # The bound: a retry at most FAST_RETRY_S (1 s) after the link's return, plus the
    # connect itself (loopback; generous for a loaded machine): cut + 1.5 s.
    proxy = Proxy(mosquitto.port)
    port = await proxy.start()
    settings = BrokerSettings.from_url(f"mqtt://127.0.0.1:{port}")
    caplog.set_level(logging.INFO, logger="edgefleet.session")  # as an agent runs
    session = Session(settings, client_id="cut-agent", rng=random.Random(7))
    session.start()
    loop = asyncio.get_running_loop()

    async def away_after(*down_up: float) -> float:
        """Cut the link for ``down_up[0]``, restore it for ``down_up[1]``, cut again ...;
        the seconds from the last restore until the session is connected again."""
        await asyncio.sleep(1.0)  # up a while: longer than STABLE_AFTER_S
        for i, length in enumerate(down_up):
            if i % 2 == 0:
                proxy.cut()
                if i == 0:
                    await disconnected(session)
            else:
                proxy.restore()
            await asyncio.sleep(length)
        proxy.restore()
        restored_at = loop.time()
        await connected(session)
        return loop.time() - restored_at

    try:
        await connected(session)
        for cut_s in (1.5, 1.0):  # the earlier cuts (they escalated the old counter)
            await away_after(cut_s)
        for cut_s in (1.2, 2.0):
            late = await away_after(cut_s)
            assert late <= 1.5, f"a {cut_s} s cut kept the session away {cut_s + late:.1f} s"
        # A flapping link: the session may or may not get through the 0.3 s in between;
        # either way it is back within the bound of the link's last return.
        late = await away_after(1.4, 0.3, 1.4)
        assert late <= 1.5, f"back {late:.1f} s after the link (cut, 0.3 s up, cut)"
        ours = [r for r in caplog.records if r.name.startswith("edgefleet.session")]
        warnings = [r for r in ours if r.levelno >= logging.WARNING]
        assert all(r.levelno == logging.WARNING for r in warnings)
        assert 5 <= session.stats.outages <= 6  # the flap is one outage or two
        assert len(warnings) == session.stats.outages, [r.getMessage() for r in warnings]
    finally:
        await session.close()
        await proxy.close()


def until_through(
    schedule: ReconnectSchedule, rng: random.Random, down: list[tuple[float, float]]
) -> float:
    """When the schedule's attempts first land outside every ``(start, end)`` cut, for an
    outage that began at the first cut (an attempt during a cut fails at once)."""
    now = down[0][0]
    schedule.lost(now)
    while any(start <= now < end for start, end in down):
        now += schedule.next_delay(rng, now)
    return now


def test_a_returning_link_is_found_within_a_second_however_the_outage_went() -> None:
    # Issue #13: doubling through the outage made the retry after a link's return wait as
    # long again as the outage so far (a 1.2 s cut: up to 3.2 s; cut, 0.8 s up, cut: 6.9 s).
    for seed in range(300):
        rng = random.Random(seed)
        schedule = ReconnectSchedule(Backoff())
        schedule.connected(0.0)
        for cuts in ([(10.0, 11.2)], [(20.0, 22.0)], [(30.0, 31.4), (31.7, 33.1)],
                     [(40.0, 42.0), (42.8, 44.6)], [(50.0, 62.0)]):  # fmt: skip
            back = until_through(schedule, rng, cuts)
            assert back - cuts[-1][1] <= FAST_RETRY_S, (seed, cuts, back)
            schedule.connected(back)


def test_a_long_outage_still_backs_off_to_the_cap() -> None:
    schedule = ReconnectSchedule(Backoff(base_s=0.25, cap_s=30.0))
    rng = random.Random(5)
    now = 0.0
    schedule.lost(now)
    delays = []
    while now < 300.0:
        delays.append(schedule.next_delay(rng, now))
        now += delays[-1]
    young = [d for d, at in zip(delays, _starts(delays), strict=True) if at < FAST_FOR_S]
    assert max(young) <= FAST_RETRY_S
    assert len(young) <= 3 + FAST_FOR_S / (FAST_RETRY_S / 2)  # 0.25, 0.5, then 0.5-1 s
    assert delays[-1] >= 15.0, delays  # old: doubles on from 1 s to the 30 s cap
    assert len(delays) - len(young) <= 5 + (300 - FAST_FOR_S) / 15, delays


def _starts(delays: list[float]) -> list[float]:
    at, out = 0.0, []
    for d in delays:
        out.append(at)
        at += d
    return out


def test_a_broker_that_drops_us_at_once_is_not_hammered() -> None:
    schedule = ReconnectSchedule(Backoff(base_s=0.25, cap_s=30.0), stable_after_s=2.0)
    rng = random.Random(1)
    now = 0.0
    delays = []
    for _ in range(11):
        schedule.connected(now)
        now += 0.05  # kicked 50 ms after the CONNACK
        schedule.lost(now)
        delay = schedule.next_delay(rng, now)
        delays.append(delay)
        now += delay
    assert max(delays[:4]) <= 0.25, delays  # four short connections: still link cuts
    assert delays[-1] >= 4.0, delays  # a streak of them: escalates like one long outage
    schedule.connected(now)
    schedule.lost(now + 2.0)  # a connection that stayed up: a fresh outage
    assert schedule.next_delay(rng, now + 2.0) <= 0.25


def test_a_cut_right_after_a_reconnect_is_retried_at_once() -> None:
    # The chaos suite's link cuts: reconnected, cut again 0.2 s later, twice — the third
    # outage must still start at the shortest delay (the stable-only rule waited 6.4 s).
    schedule = ReconnectSchedule(Backoff(base_s=0.25, cap_s=30.0), stable_after_s=2.0)
    rng = random.Random(2)
    schedule.connected(0.0)
    schedule.lost(10.0)
    for _ in range(4):
        schedule.next_delay(rng, 11.0)  # a 2 s cut: four failed attempts
    now = 12.0
    for _ in range(2):
        schedule.connected(now)
        schedule.lost(now + 0.2)
        assert schedule.next_delay(rng, now + 0.2) <= 0.25
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


async def test_a_cut_between_the_connack_and_the_suback_fails_the_attempt_at_once(
    mosquitto: Mosquitto,
) -> None:
    # Seen in the chaos suite: a retry got its CONNACK in the moment the link was back,
    # the link went again before the SUBACK, and the subscribe waited out its 10 s timeout
    # (a 1.65 s cut kept an agent away 13.2 s).
    proxy = Proxy(mosquitto.port)
    port = await proxy.start()
    settings = BrokerSettings.from_url(f"mqtt://127.0.0.1:{port}")
    session = Session(settings, client_id="suback-agent", subscriptions=["t/a", "t/b"])
    session.start()
    loop = asyncio.get_running_loop()
    cut_at: list[float] = []

    def cut_the_first_subscribe(chunk: bytes) -> None:
        if chunk[:1] and chunk[0] >> 4 == 8 and not cut_at:  # SUBSCRIBE
            cut_at.append(loop.time())
            proxy.cut()
            loop.call_later(0.2, proxy.restore)

    try:
        await connected(session)
        proxy.on_up = cut_the_first_subscribe
        proxy.cut()
        await disconnected(session)
        proxy.restore()
        async with asyncio.timeout(30):
            while not cut_at:
                await asyncio.sleep(0.01)
        await connected(session, timeout=30)
        back_s = loop.time() - cut_at[0] - 0.2
        assert back_s <= 1.5, f"back {back_s:.1f} s after the link (cut before the SUBACK)"
    finally:
        await session.close()
        await proxy.close()
