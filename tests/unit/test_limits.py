"""The window limiter both sides use against floods (issue #12 defect 7): the first
``limit`` per key per window pass, the rest are counted and summarised once."""

from __future__ import annotations

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
