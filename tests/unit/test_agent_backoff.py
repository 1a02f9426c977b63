"""Per-workload backoff: doubling to a cap, keyed by spec hash, permanent errors wait long."""

from __future__ import annotations

import pytest
from edgefleet_agent.core.backoff import BackoffPolicy, after_failure, next_due

POLICY = BackoffPolicy(base_s=1, cap_s=8, permanent_s=300)


@pytest.mark.parametrize(
    ("failures", "permanent", "delay"),
    [(1, False, 1), (2, False, 2), (3, False, 4), (4, False, 8), (10, False, 8), (1, True, 300)],
)
def test_delay_doubles_to_the_cap(failures: int, permanent: bool, delay: float) -> None:
    assert POLICY.delay(failures, permanent=permanent) == delay


def test_failures_count_up_for_the_same_hash_and_restart_for_a_new_one() -> None:
    first = after_failure(
        None,
        spec_hash="h1",
        action="start failed",
        message="x",
        permanent=False,
        now=0,
        policy=POLICY,
    )
    second = after_failure(
        first,
        spec_hash="h1",
        action="start failed",
        message="x",
        permanent=False,
        now=1,
        policy=POLICY,
    )
    other = after_failure(
        second,
        spec_hash="h2",
        action="start failed",
        message="x",
        permanent=False,
        now=2,
        policy=POLICY,
    )
    assert (first.failures, second.failures, other.failures) == (1, 2, 1)
    assert second.next_attempt_at == 1 + 2
    assert second.blocks("h1", 2.9)
    assert not second.blocks("h1", 3.0)
    assert not second.blocks("h2", 2.0)


def test_the_description_is_stable_and_says_what_failed() -> None:
    entry = after_failure(
        None,
        spec_hash="h",
        action="start failed",
        message="no such image",
        permanent=True,
        now=0,
        policy=POLICY,
    )
    assert entry.describe() == (
        "start failed (permanent error): no such image; next attempt after 300 s"
    )


def test_next_due_is_the_earliest_future_retry() -> None:
    a = after_failure(
        None, spec_hash="h", action="a", message="", permanent=False, now=0, policy=POLICY
    )
    b = after_failure(
        None, spec_hash="h", action="a", message="", permanent=True, now=0, policy=POLICY
    )
    assert next_due({"a": a, "b": b}, now=0.5) == 1.0
    assert next_due({"a": a}, now=5.0) is None
