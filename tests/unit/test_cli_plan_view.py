"""How ``edgefleet diff`` / ``deploy --dry-run`` print a ``plan`` result: the verdict,
one marked line per changed field, the replicas' nodes, and the dry-run reminder."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_cli.plan_views import MAX_VALUE_CHARS, change_line, plan_view, verdict_line
from rich.console import Console


def render(result: dict[str, Any]) -> str:
    console = Console(width=200, record=True)
    console.print(plan_view(result))
    return console.export_text()


UPDATE: dict[str, Any] = {
    "app": "web",
    "action": "update",
    "changes": [
        {"path": "replicas", "from": 1, "to": 2},
        {"path": "workload.env.LEVEL", "to": "2"},
        {"path": "labels.team", "from": "ops"},
    ],
    "revision": 3,
    "from_revision": 2,
    "rollout": "canary",
    "desired": 2,
    "replicas": [
        {"replica": "web-0", "node": "gw-1", "site": "s1", "change": "kept"},
        {"replica": "web-1", "node": "gw-2", "site": "s1", "change": "moved", "from": "gw-3"},
    ],
    "unplaced": [{"count": 1, "reasons": ["no node has the gpu label"]}],
}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"path": "a.b", "to": "x"}, '+ a.b: "x"'),
        ({"path": "a.b", "from": 3}, "- a.b: 3"),
        ({"path": "replicas", "from": 1, "to": 2}, "~ replicas: 1 -> 2"),
        (
            {"path": "c", "from": "1", "to": 1},
            '~ c: "1" -> 1',
        ),  # a string never looks like a number
        ({"path": "cmd", "from": ["a"], "to": None}, '~ cmd: ["a"] -> null'),
    ],
)
def test_each_change_is_one_marked_line(change: dict[str, Any], line: str) -> None:
    assert change_line(change) == line


def test_a_long_value_is_cut_so_an_env_blob_does_not_flood_the_terminal() -> None:
    line = change_line({"path": "workload.env.BLOB", "to": "x" * 5000})
    assert line == f'+ workload.env.BLOB: "{"x" * (MAX_VALUE_CHARS - 4)}...'


def test_an_update_shows_verdict_changes_replicas_unplaced_and_that_nothing_changed() -> None:
    text = render(UPDATE)
    lines = text.splitlines()
    assert lines[0] == (
        "a deploy would update app web as revision 3 and start a rollout from revision 2 (canary)"
    )
    assert "3 fields would change:" in lines
    assert "~ replicas: 1 -> 2" in lines and '+ workload.env.LEVEL: "2"' in lines
    assert '- labels.team: "ops"' in lines
    assert "replicas (2 desired) would be:" in lines
    row = next(line for line in lines if "web-1" in line)
    assert "gw-2" in row and "moved (from gw-3)" in row
    assert "1 replica would not be placed:" in lines
    assert "  - no node has the gpu label" in lines
    assert lines[-1] == "dry run: nothing was changed"


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({"app": "a", "action": "unchanged"}, "app a is unchanged: a deploy would change nothing"),
        (
            {"app": "a", "action": "create", "revision": 1, "rollout": None},
            "a deploy would create app a as revision 1",
        ),
        (
            {"app": "a", "action": "update", "revision": None, "rollout": None},
            "a deploy would update app a (no rollout: the workload is unchanged, so it applies "
            "at once)",
        ),
    ],
)
def test_the_verdict_line_says_what_the_deploy_would_do(
    plan: dict[str, Any], expected: str
) -> None:
    assert verdict_line(plan) == expected


def test_an_app_with_no_replicas_says_so() -> None:
    text = render({"app": "a", "action": "unchanged", "changes": [], "desired": 0,
                   "replicas": [], "unplaced": []})  # fmt: skip
    assert "no replicas (0 desired)" in text.splitlines()
