"""bench.link_cuts counts one outage per run of cuts the client did not get through, from
the link's last return (a second cut before the client was back is the same outage)."""

from __future__ import annotations

import pytest

from bench.link_cuts import late_after_link


def test_each_outage_counts_from_the_links_last_return() -> None:
    cuts = [("gw-1", 0.0, 1.0), ("gw-2", 1.5, 2.0), ("gw-1", 2.5, 3.0), ("gw-1", 3.2, 4.0)]
    seen = [
        (0.0, "gw-1", "offline"),
        (1.4, "gw-1", "online"),  # back 0.4 s after the first cut
        (2.3, "gw-2", "online"),
        (2.5, "gw-1", "offline"),
        (4.6, "gw-1", "online"),  # not back between the last two cuts: one outage
    ]
    late = late_after_link(cuts, seen)
    assert [(who, round(s, 3)) for who, s in late] == [("gw-1", 0.4), ("gw-2", 0.3), ("gw-1", 0.6)]


def test_a_client_that_never_returns_is_an_error() -> None:
    with pytest.raises(AssertionError, match="gw-3 never came back"):
        late_after_link([("gw-3", 0.0, 1.0)], [(0.1, "gw-3", "offline")])
