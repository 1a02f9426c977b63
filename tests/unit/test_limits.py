"""The window limiter both sides use against floods (issue #12 defect 7): the first
``limit`` per key per window pass, the rest are counted and summarised once."""

from __future__ import annotations

import pytest
from edgefleet_protocol.limits import OTHERS, WindowLimiter


def test_the_first_limit_pass_and_the_rest_are_summarised_once_the_window_ends() -> None:
    lim = WindowLimiter(3, 10.0)
    assert [lim.allow("a", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert lim.summaries(5.0) == []  # the window still runs
    assert lim.summaries(10.0) == [("a", 2)]
    assert lim.summaries(20.0) == []  # reported once


def test_keys_are_limited_apart() -> None:
    lim = WindowLimiter(1, 10.0)
    assert lim.allow("a", 0.0) and lim.allow("b", 0.0)
    assert not lim.allow("a", 1.0)
    assert lim.allow("c", 1.0)


def test_a_new_window_lets_things_through_again_and_keeps_the_old_count() -> None:
    lim = WindowLimiter(1, 10.0)
    assert lim.allow("a", 0.0)
    assert not lim.allow("a", 1.0)
    assert lim.allow("a", 10.5)
    assert not lim.allow("a", 11.0)
    assert lim.summaries(11.0) == [("a", 1)]
    assert lim.summaries(21.0) == [("a", 1)]
    assert lim.refused_total == 2


def test_invented_keys_beyond_the_bound_share_one_key() -> None:
    lim = WindowLimiter(1, 10.0, max_keys=2)
    assert lim.allow("a", 0.0) and lim.allow("b", 0.0)
    assert lim.allow("c", 0.0)  # the first of the others
    assert not lim.allow("d", 0.0)
    assert lim.summaries(10.0) == [(OTHERS, 1)]


# -- the edges (each a surviving mutant of `make mutate`) ------------------------------------


@pytest.mark.parametrize(
    ("limit", "window_s", "max_keys"), [(0, 1.0, 1), (1, 0.0, 1), (1, -1.0, 1), (1, 1.0, 0)]
)
def test_a_limiter_needs_a_limit_a_window_and_a_key(
    limit: int, window_s: float, max_keys: int
) -> None:
    with pytest.raises(ValueError, match=r"^limit and max_keys must be >= 1 and window_s > 0$"):
        WindowLimiter(limit, window_s, max_keys=max_keys)


def test_the_smallest_limiter_is_one_per_short_window_with_one_key() -> None:
    limiter = WindowLimiter(1, 0.5, max_keys=1)
    assert (limiter.limit, limiter.window_s, limiter.max_keys) == (1, 0.5, 1)
    assert WindowLimiter(1, 1.0).max_keys == 1000
    assert OTHERS == "*others*"


def test_a_window_ends_exactly_window_s_after_it_started() -> None:
    limiter = WindowLimiter(1, 10.0)
    assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 9.99)
    assert limiter.allow("a", 10.0)
    assert limiter.summaries(10.0) == [("a", 1)]


def test_refusals_of_keys_beyond_the_bound_are_summarised_under_others() -> None:
    limiter = WindowLimiter(1, 10.0, max_keys=1)
    for key in ("a", "b"):  # b arrives after a's window ended: its own window
        now = 0.0 if key == "a" else 10.0
        assert limiter.allow(key, now)
        assert not limiter.allow(key, now)
    assert limiter.allow("c", 10.0)  # a new key while b's window runs: shares OTHERS'
    assert not limiter.allow("d", 10.0)
    assert limiter.summaries(30.0) == [(OTHERS, 2), ("a", 1)]
