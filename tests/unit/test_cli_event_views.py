"""``edgefleet events``: which events the filters keep, what the command is asked, and the
one line each event prints as."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_cli.event_views import EventFilter, event_key, event_line

EVENT: dict[str, Any] = {
    "v": 1,
    "ts": 1767225720.5,
    "level": "warning",
    "kind": "node-isolated",
    "message": "node gw-1 is left out of scheduling",
    "node": "gw-1",
    "site": "s1",
}


@pytest.mark.parametrize(
    ("wanted", "keeps"),
    [
        (EventFilter(), True),
        (EventFilter(node="gw-1"), True),
        (EventFilter(node="gw-2"), False),
        (EventFilter(app="web"), False),  # the event names no app
        (EventFilter(kinds=("node-isolated", "node")), True),
        (EventFilter(kinds=("command",)), False),
        (EventFilter(node="gw-1", kinds=("command",)), False),  # every filter must hold
    ],
)
def test_every_given_filter_must_hold(wanted: EventFilter, keeps: bool) -> None:
    assert wanted.matches(EVENT) is keeps


def test_the_command_is_asked_for_one_kind_but_several_are_filtered_here() -> None:
    assert EventFilter(node="gw-1", kinds=("node",)).args() == {"node": "gw-1", "kind": "node"}
    assert EventFilter(app="web", kinds=("node", "command")).args() == {"app": "web"}
    assert EventFilter().args() == {}


def test_an_event_is_one_line_with_time_level_source_kind_subject_and_message() -> None:
    assert event_line(EVENT) == (
        "2026-01-01 00:02:00 UTC  warning  orchestrator  node-isolated [node gw-1]: "
        "node gw-1 is left out of scheduling"
    )
    agent = {"ts": "bad", "kind": "workload-failed", "message": "m", "app": "web"}
    assert event_line(agent, source="gw-2") == (
        "-  info     gw-2          workload-failed [app web]: m"
    )


def test_the_same_event_twice_has_the_same_key_and_another_does_not() -> None:
    assert event_key(dict(EVENT)) == event_key(EVENT)
    assert event_key({**EVENT, "ts": EVENT["ts"] + 1}) != event_key(EVENT)
