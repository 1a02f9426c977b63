"""The health state machine: start period, threshold, recovery, restart."""

from __future__ import annotations

import pytest
from edgefleet_agent.core.health import HealthState, as_health, begin, is_due, record
from edgefleet_protocol import HealthCheck

CHECK = HealthCheck(kind="tcp", port=80, interval_s=5, failure_threshold=3, start_period_s=0)
SLOW_START = HealthCheck(kind="tcp", port=80, interval_s=5, failure_threshold=2, start_period_s=30)


def run(check: HealthCheck, results: str, *, step: float = 5.0) -> HealthState:
    """Feed probe results ('+' pass, '-' fail) one interval apart, from t=0."""
    state = begin(check, 0.0)
    for i, mark in enumerate(results):
        state = record(state, check, ok=mark == "+", output=f"probe {i}", now=1.0 + i * step)
    return state


@pytest.mark.parametrize(
    ("check", "results", "status", "failures"),
    [
        (CHECK, "", "starting", 0),
        (CHECK, "+", "healthy", 0),
        (CHECK, "--", "starting", 2),
        (CHECK, "---", "unhealthy", 3),
        (CHECK, "+--", "healthy", 2),
        (CHECK, "+---", "unhealthy", 3),
        (CHECK, "---+", "healthy", 0),
        (CHECK, "+-+-", "healthy", 1),
        # Inside the 30 s start period failures do not count...
        (SLOW_START, "-----", "starting", 0),
        # ...after it they do (probes at 1, 6, ... 41 s: those at 31, 36, 41 s count).
        (SLOW_START, "---------", "unhealthy", 3),
        # A success ends the start period early: later failures count at once.
        (SLOW_START, "+--", "unhealthy", 2),
    ],
)
def test_health_follows_probe_results(
    check: HealthCheck, results: str, status: str, failures: int
) -> None:
    state = run(check, results)
    assert (state.status, state.consecutive_failures) == (status, failures)


def test_the_first_probe_comes_soon_and_then_every_interval() -> None:
    state = begin(CHECK, 100.0)
    assert not is_due(state, 100.5)
    assert is_due(state, 101.0)
    state = record(state, CHECK, ok=True, output="ok", now=101.0)
    assert not is_due(state, 105.9)
    assert is_due(state, 106.0)


def test_the_failing_output_is_kept_for_the_report() -> None:
    state = run(CHECK, "---")
    assert state.last_output == "probe 2"


@pytest.mark.parametrize(
    ("results", "health"), [("", "unknown"), ("+", "healthy"), ("---", "unhealthy")]
)
def test_reported_health_of_each_status(results: str, health: str) -> None:
    assert as_health(run(CHECK, results)) == health


def test_begin_resets_after_a_restart() -> None:
    state = run(CHECK, "---")
    again = begin(CHECK, 50.0)
    assert (again.status, again.consecutive_failures) == ("starting", 0)
    assert state.status == "unhealthy"
