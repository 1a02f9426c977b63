"""Report-by-exception telemetry: deadbands, heartbeat, and the compact wire form."""

from __future__ import annotations

import json

import pytest
from edgefleet_agent.core.telemetry import (
    Deadbands,
    Decision,
    Sample,
    SentState,
    compact_json,
    decide,
    moved,
    to_telemetry,
)
from edgefleet_protocol import Telemetry, WorkloadUsage, decode

BANDS = Deadbands(confirm_samples=1)  # pure deadband behaviour; confirmation is tested below


@pytest.mark.parametrize(
    ("path", "last", "new", "expected"),
    [
        ("cpu_pct", 10.0, 14.9, False),
        ("cpu_pct", 10.0, 15.0, True),
        ("cpu_pct", 10.0, 5.0, True),
        ("memory_pct", 50.0, 51.9, False),
        ("memory_pct", 50.0, 52.0, True),
        ("disk_pct", 70.0, 70.5, False),
        ("load1", 0.5, 0.9, False),
        ("load1", 0.5, 1.0, True),
        ("workloads/w1/cpu_pct", 3.0, 7.0, False),
        ("workloads/w1/cpu_pct", 3.0, 8.0, True),
        ("workloads/w1/memory_mb", 100.0, 104.0, False),
        ("workloads/w1/memory_mb", 100.0, 106.0, True),
        # Latency must move by 20 % and by 5 ms: tiny loopback jitter is not news...
        ("latency_ms/broker", 0.3, 0.9, False),
        # ...and neither is 10 ms on a 200 ms satellite link, but 50 ms is.
        ("latency_ms/broker", 200.0, 210.0, False),
        ("latency_ms/broker", 200.0, 250.0, True),
        ("latency_ms/broker", 10.0, 16.0, True),
        ("metrics/queue", 100.0, 104.0, False),
        ("metrics/queue", 100.0, 105.0, True),
        ("workloads/w1/metrics/temp", 0.0, 0.1, True),
        ("cpu_pct", 10.0, 10.0, False),
    ],
)
def test_a_value_is_sent_only_when_it_moves_past_its_deadband(
    path: str, last: float, new: float, expected: bool
) -> None:
    assert moved(path, new, last, BANDS) is expected


def sample(
    cpu: float = 10.0, mem: float = 40.0, latency: float = 1.0, w1_cpu: float = 2.0
) -> Sample:
    return Sample(
        cpu_pct=cpu,
        memory_pct=mem,
        disk_pct=30.0,
        load1=0.2,
        latency_ms={"broker": latency},
        workloads={"w1": WorkloadUsage(cpu_pct=w1_cpu, memory_mb=20.0, metrics={"q": 3.0})},
    )


def test_the_first_sample_is_sent_in_full() -> None:
    decision, state = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    assert decision is not None
    assert decision.full
    assert decision.values["workloads/w1/metrics/q"] == 3.0
    assert state.last_full_at == 0.0


def test_nothing_is_sent_while_values_stay_inside_their_deadbands() -> None:
    _, state = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    decision, _ = decide(
        sample(cpu=12.0, mem=41.0, latency=1.4), state, now=10.0, heartbeat_s=60, bands=BANDS
    )
    assert decision is None


def test_only_the_values_that_moved_are_sent() -> None:
    _, state = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    decision, _ = decide(sample(cpu=40.0, w1_cpu=9.0), state, now=10.0, heartbeat_s=60, bands=BANDS)
    assert decision == Decision(values={"cpu_pct": 40.0, "workloads/w1/cpu_pct": 9.0}, full=False)


def test_slow_drift_is_compared_with_the_last_sent_value_not_the_last_sample() -> None:
    _, state = decide(sample(cpu=10.0), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    sent = []
    for i, cpu in enumerate([12.0, 14.0, 16.0]):
        decision, state = decide(sample(cpu=cpu), state, now=1.0 + i, heartbeat_s=60, bands=BANDS)
        sent.append(decision.values if decision else None)
    assert sent == [None, None, {"cpu_pct": 16.0}]


def test_everything_is_sent_again_when_the_heartbeat_is_due() -> None:
    _, state = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    quiet, state = decide(sample(), state, now=59.0, heartbeat_s=60, bands=BANDS)
    beat, state = decide(sample(), state, now=60.0, heartbeat_s=60, bands=BANDS)
    assert quiet is None
    assert beat is not None
    assert beat.full
    assert "cpu_pct" in beat.values
    assert state.last_full_at == 60.0


def test_a_new_workload_is_news_at_once() -> None:
    _, state = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    more = Sample(
        cpu_pct=10.0,
        memory_pct=40.0,
        disk_pct=30.0,
        load1=0.2,
        latency_ms={"broker": 1.0},
        workloads={
            "w1": WorkloadUsage(cpu_pct=2.0, memory_mb=20.0, metrics={"q": 3.0}),
            "w2": WorkloadUsage(cpu_pct=1.0),
        },
    )
    decision, _ = decide(more, state, now=5.0, heartbeat_s=60, bands=BANDS)
    assert decision is not None
    assert decision.values == {"workloads/w2/cpu_pct": 1.0}


def test_rounding_noise_never_counts_as_movement() -> None:
    bands = Deadbands(metric_pct=0)
    _, state = decide(
        Sample(metrics={"m": 1.0000001}), SentState(), now=0, heartbeat_s=60, bands=bands
    )
    decision, _ = decide(
        Sample(metrics={"m": 1.0000002}), state, now=1, heartbeat_s=60, bands=bands
    )
    assert decision is None


def test_a_delta_unflattens_into_a_valid_compact_telemetry_message() -> None:
    decision = Decision(
        values={
            "cpu_pct": 40.0,
            "latency_ms/broker": 3.5,
            "workloads/w1/cpu_pct": 9.0,
            "workloads/w1/metrics/q.depth": 7.0,
        },
        full=False,
    )
    message = to_telemetry(decision, node="n1", site="s1", ts=12.3456)
    raw = compact_json(message)
    data = json.loads(raw)
    assert data == {
        "v": 1,
        "node": "n1",
        "site": "s1",
        "ts": 12.346,
        "cpu_pct": 40.0,
        "latency_ms": {"broker": 3.5},
        "workloads": {"w1": {"cpu_pct": 9.0, "metrics": {"q.depth": 7.0}}},
    }
    assert decode(Telemetry, raw) == message


def test_a_full_message_says_so_on_the_wire() -> None:
    decision, _ = decide(sample(), SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    assert decision is not None
    data = json.loads(compact_json(to_telemetry(decision, node="n1", site="s1", ts=0.0)))
    assert data["full"] is True
    assert data["workloads"]["w1"] == {"cpu_pct": 2.0, "memory_mb": 20.0, "metrics": {"q": 3.0}}


def test_an_idle_node_heartbeat_stays_small() -> None:
    """The idle-traffic budget (README) assumes a full idle heartbeat under ~200 bytes."""
    idle = Sample(
        cpu_pct=3.2, memory_pct=41.7, disk_pct=63.1, load1=0.12, latency_ms={"broker": 0.42}
    )
    decision, _ = decide(idle, SentState(), now=0.0, heartbeat_s=60, bands=BANDS)
    assert decision is not None
    raw = compact_json(to_telemetry(decision, node="gw-0042", site="plant-7", ts=1_760_000_000.123))
    assert len(raw) < 200, raw


CONFIRMING = Deadbands()  # the default: cpu and load must stay out of band for 2 samples


def run_cpu(values: list[float], bands: Deadbands = CONFIRMING) -> list[float | None]:
    """cpu_pct per sample after a first full send at 10 %; what each tick sent."""
    _, state = decide(Sample(cpu_pct=10.0), SentState(), now=0.0, heartbeat_s=600, bands=bands)
    sent: list[float | None] = []
    for i, cpu in enumerate(values):
        decision, state = decide(
            Sample(cpu_pct=cpu), state, now=1.0 + i, heartbeat_s=600, bands=bands
        )
        sent.append(decision.values.get("cpu_pct") if decision else None)
    return sent


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([40.0, 10.0, 12.0], [None, None, None]),  # a one-sample spike is not news
        ([40.0, 42.0], [None, 42.0]),  # a change that lasts is sent on its second sample
        ([40.0, 11.0, 40.0, 41.0], [None, None, None, 41.0]),  # the streak starts over
        ([40.0, 42.0, 43.0], [None, 42.0, None]),  # and once sent, 43 is inside the band
    ],
)
def test_noisy_values_must_stay_out_of_band_before_they_are_sent(
    values: list[float], expected: list[float | None]
) -> None:
    assert run_cpu(values) == expected


def test_confirmation_can_be_turned_off() -> None:
    assert run_cpu([40.0, 10.0], bands=Deadbands(confirm_samples=1)) == [40.0, 10.0]


def test_steady_values_like_memory_are_sent_at_once() -> None:
    _, state = decide(
        Sample(memory_pct=40.0), SentState(), now=0, heartbeat_s=600, bands=CONFIRMING
    )
    decision, _ = decide(Sample(memory_pct=45.0), state, now=1, heartbeat_s=600, bands=CONFIRMING)
    assert decision is not None
    assert decision.values == {"memory_pct": 45.0}
