"""``edgefleet audit``'s table: one row per command, the target only when there is one."""

from __future__ import annotations

from edgefleet_cli.commands.audit import audit_view
from rich.console import Console


def render(result: dict[str, object]) -> str:
    console = Console(width=200, record=True)
    console.print(audit_view(result))
    return console.export_text()


def test_each_entry_is_a_row_with_who_verb_target_and_result() -> None:
    text = render(
        {
            "entries": [
                {
                    "ts": 0.0,
                    "operator": "bob",
                    "verb": "deploy",
                    "target_kind": "app",
                    "target": "web",
                    "ok": False,
                    "result": "forbidden",
                    "request_id": "r-1",
                },
                {
                    "ts": 60.0,
                    "operator": "alice",
                    "verb": "nodes",
                    "target_kind": None,
                    "target": None,
                    "ok": True,
                    "result": "ok",
                    "request_id": "r-2",
                },
            ]
        }
    )
    lines = [line for line in text.splitlines() if "bob" in line or "alice" in line]
    assert "1970-01-01 00:00:00 UTC" in lines[0] and "app web" in lines[0]
    assert "forbidden" in lines[0] and "r-1" in lines[0]
    assert "nodes" in lines[1] and " - " in lines[1]


def test_no_entries_says_so() -> None:
    assert "no audit entries" in render({"entries": []})
