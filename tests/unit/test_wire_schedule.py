"""The pure wire values: each topic kind's QoS/retain on a Publication, the jittered capped
backoff, and the reconnect schedule's reset and kick-streak rules (issue #13), driven with
made-up monotonic times and a fixed RNG (no clock, no broker)."""

from __future__ import annotations

import random

import pytest
from edgefleet_protocol import OrchestratorStatus, encode
from edgefleet_protocol.topics import TopicKind
from edgefleet_protocol.wire import (
    FAST_FOR_S,
    FAST_RETRY_S,
    KICK_STREAK,
    STABLE_AFTER_S,
    Backoff,
    InboundMessage,
    Publication,
    ReconnectSchedule,
)


class Edge(random.Random):
    """An RNG that always draws one end of the range asked for."""

    def __init__(self, top: bool) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def test_a_publication_of_a_kind_carries_that_kinds_rule_and_the_encoded_model() -> None:
    model = OrchestratorStatus.model_validate({"v": 1, "state": "online", "since": 1.0})
    status = Publication.of(TopicKind.ORCHESTRATOR_STATUS, "r/orchestrator/status", model)
    assert status == Publication("r/orchestrator/status", encode(model), qos=1, retain=True)
    event = Publication.of(TopicKind.NODE_TELEMETRY, "t", model)
    assert (event.qos, event.retain) == (0, False)


def test_plain_publications_and_inbound_messages_default_to_qos1_not_retained_no_props() -> None:
    plain = Publication("t", b"x")
    assert (plain.qos, plain.retain, plain.expiry_s, plain.correlation_data) == (
        1,
        False,
        None,
        None,
    )
    inbound = InboundMessage("t", b"x", 1, False)
    assert (inbound.response_topic, inbound.correlation_data) == (None, None)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 0.25), (1, 0.5), (3, 2.0), (6, 16.0), (7, 30.0), (500, 30.0)]
)
def test_the_backoff_doubles_from_a_quarter_second_to_thirty_and_jitters_in_the_upper_half(
    attempt: int, ceiling: float
) -> None:
    backoff = Backoff()
    assert backoff.delay(attempt, Edge(top=True)) == ceiling
    assert backoff.delay(attempt, Edge(top=False)) == ceiling / 2


def test_the_backoff_exponent_stops_at_thirty() -> None:
    assert Backoff(base_s=1.0, cap_s=1e12).delay(40, Edge(top=True)) == 2.0**30


def test_the_stable_kick_and_fast_retry_figures() -> None:
    assert (STABLE_AFTER_S, KICK_STREAK, FAST_RETRY_S, FAST_FOR_S) == (0.5, 5, 1.0, 30.0)
    schedule = ReconnectSchedule(Backoff())
    assert (schedule.stable_after_s, schedule.fast_retry_s, schedule.fast_for_s) == (
        0.5,
        1.0,
        30.0,
    )


def test_an_outage_begins_once_and_connecting_says_how_long_it_lasted() -> None:
    schedule = ReconnectSchedule(Backoff())
    assert schedule.connected(1.0) is None  # the first connect ends no outage
    assert schedule.lost(10.0) is True
    assert schedule.lost(11.0) is False  # a failed attempt within the same outage
    assert schedule.connected(12.5) == 2.5
    assert schedule.outage_since is None


def test_a_young_outage_retries_every_second_then_doubles_once_old() -> None:
    schedule = ReconnectSchedule(Backoff())
    schedule.connected(0.0)
    schedule.lost(10.0)
    top = Edge(top=True)
    young = [schedule.next_delay(top, 10.0 + t) for t in (0, 1, 2, 3, 29.9)]
    assert young == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert schedule.attempt == 2  # held at the fast retry, not counted on
    old = [schedule.next_delay(top, 40.0 + t) for t in range(4)]  # 30 s into the outage
    assert old == [1.0, 2.0, 4.0, 8.0]
    assert schedule.next_delay(Edge(top=False), 50.0) == 8.0  # the lower half of 16


def test_every_outage_starts_its_backoff_over() -> None:
    schedule = ReconnectSchedule(Backoff())
    schedule.connected(0.0)
    schedule.lost(10.0)
    top = Edge(top=True)
    for t in range(40, 44):
        schedule.next_delay(top, float(t))
    assert schedule.attempt == 4
    schedule.lost(44.0)  # an attempt failed: the sequence goes on
    assert schedule.next_delay(top, 44.0) == 4.0
    schedule.connected(50.0)
    schedule.lost(50.5)  # lasted exactly stable_after_s: a real connection
    assert (schedule.short_streak, schedule.attempt) == (0, 0)
    assert schedule.next_delay(top, 50.5) == 0.25


def kicked(times: int) -> ReconnectSchedule:
    """A schedule whose last ``times`` connections each lasted 0.1 s, with four retries
    after each."""
    schedule = ReconnectSchedule(Backoff())
    now = 0.0
    for _ in range(times):
        schedule.connected(now)
        schedule.lost(now + 0.1)
        for _ in range(4):
            schedule.next_delay(Edge(top=True), now + 0.2)
        now += 10.0
    return schedule


def test_four_short_connections_still_reset_the_backoff() -> None:
    schedule = kicked(KICK_STREAK - 1)
    assert schedule.short_streak == KICK_STREAK - 1
    assert schedule.attempt == 2  # reset at the last loss, then held at the fast retry


def test_the_fifth_short_connection_in_a_row_keeps_escalating_even_when_young() -> None:
    schedule = kicked(KICK_STREAK)
    assert schedule.short_streak == KICK_STREAK
    assert schedule.attempt == 6  # not reset at the fifth loss, and not held
    assert schedule.next_delay(Edge(top=True), 40.2) == 16.0
    schedule.connected(100.0)
    schedule.lost(100.6)  # one connection that lasted ends the streak
    assert (schedule.short_streak, schedule.attempt) == (0, 0)


def test_a_first_connection_that_fails_retries_from_the_shortest_delay() -> None:
    schedule = ReconnectSchedule(Backoff())
    assert (schedule.attempt, schedule.short_streak, schedule.outage_since) == (0, 0, None)
    assert schedule.lost(3.0) is True  # never connected: the outage starts now
    assert schedule.next_delay(Edge(top=True), 3.0) == 0.25
