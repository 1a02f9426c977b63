"""The simulator's stdin control language: one command per line, refusals that say why."""

from __future__ import annotations

import pytest
from edgefleet_agent.simulate.control import Command, CommandError, parse_command


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("kill 5", Command("kill", count=5)),
        ("KILL 1", Command("kill", count=1)),
        ("kill sim-site-0-0 sim-site-1-1", Command("kill", nodes=("sim-site-0-0", "sim-site-1-1"))),
        ("kill a a b", Command("kill", nodes=("a", "b"))),
        ("cut 3", Command("cut", count=3)),
        ("cut 3 for 20", Command("cut", count=3, for_s=20.0)),
        ("cut for 2.5 n1", Command("cut", nodes=("n1",), for_s=2.5)),
        ("flap 2 down 1 up 4", Command("flap", count=2, down_s=1.0, up_s=4.0)),
        ("flap n1 up 4 down 1", Command("flap", nodes=("n1",), down_s=1.0, up_s=4.0)),
        ("restore", Command("restore")),
        ("restore n1 n2", Command("restore", nodes=("n1", "n2"))),
        ("revive", Command("revive")),
        ("revive 2", Command("revive", count=2)),
        ("revive n1", Command("revive", nodes=("n1",))),
        ("status", Command("status")),
        ("  stop  ", Command("stop")),
    ],
)
def test_each_command_parses_to_its_verb_targets_and_durations(
    line: str, expected: Command
) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "# kill 5", "#"])
def test_blank_and_comment_lines_are_no_command(line: str) -> None:
    assert parse_command(line) is None


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("explode 5", "unknown command 'explode'"),
        ("kill", "kill needs a count or node ids"),
        ("kill 0", "at least 1"),
        ("kill 2 n1", "one count or node ids, not both"),
        ("cut 2 for", "for needs a number of seconds"),
        ("cut 2 for soon", "for needs a number of seconds, got 'soon'"),
        ("cut 2 for -1", "for must be > 0 seconds"),
        ("flap 2 down 1", "flap needs 'down SECONDS up SECONDS'"),
        ("flap 2", "flap needs 'down SECONDS up SECONDS'"),
        ("flap down 1 up 1", "flap needs a count or node ids"),
        ("restore 3", "restore takes node ids"),
        ("status now", "status takes no arguments"),
        ("stop please", "stop takes no arguments"),
    ],
)
def test_malformed_commands_are_refused_with_a_reason(line: str, says: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(line)
    assert says in str(caught.value)
