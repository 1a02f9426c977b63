"""Label selectors and the wide tables of ``edgefleet nodes``/``apps``."""

from __future__ import annotations

import pytest
from edgefleet_cli.selectors import SelectorError, matches, parse_selector
from edgefleet_cli.views import apps_view, nodes_view
from rich.console import Console

LABELS = {"role": "sensor", "zone": "a"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("role=sensor", True),
        ("role==sensor", True),
        ("role=camera", False),
        ("zone!=b", True),
        ("zone!=a", False),
        ("role", True),
        ("gpu", False),
        ("!gpu", True),
        ("!role", False),
        ("role=sensor,zone=a", True),
        ("role=sensor,zone=b", False),
    ],
)
def test_a_selector_matches_when_every_requirement_holds(selector: str, expected: bool) -> None:
    assert matches(LABELS, parse_selector(selector)) is expected


def test_rows_without_labels_match_only_absence() -> None:
    assert matches(None, parse_selector("!role"))
    assert not matches({}, parse_selector("role"))


@pytest.mark.parametrize("bad", ["", "role=sensor,", "bad key=x", "=x", "!"])
def test_unreadable_selectors_are_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)


def render(renderable: object) -> str:
    console = Console(width=300, record=True)
    console.print(renderable)
    return console.export_text()


def test_wide_tables_add_labels_and_more() -> None:
    nodes = {
        "nodes": [
            {
                "node": "gw-1",
                "site": "a",
                "state": "online",
                "region": "eu",
                "session": 3,
                "labels": {"role": "sensor"},
            }
        ]
    }
    assert "role=sensor" not in render(nodes_view(nodes))
    wide = render(nodes_view(nodes, True))
    assert "role=sensor" in wide and "eu" in wide
    apps = {"apps": [{"app": "web", "labels": {"team": "data"}, "running": 1, "desired": 1}]}
    assert "team=data" in render(apps_view(apps, True))
    assert "team=data" not in render(apps_view(apps))
