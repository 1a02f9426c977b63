"""`python -m mutate.summary`: each module's figure is its most recent AST-runner run.

Engineers merge results files from several branches into one folder; the table the issue's
"done when" is judged by must pick, per module, the newest run however the files are named.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from mutate.summary import Latest, changed_since_measured, latest_per_module, measured_at, render


def _row(module: str, total: int, killed: int, *, runner: str = "ast", error: str = "") -> dict:
    row = {
        "module": module,
        "total": total,
        "killed": killed,
        "timeout": 1 if total else 0,
        "survived": max(total - killed - 1, 0),
        "error": error,
    }
    if runner == "ast":
        row["fast"] = 0
    return row


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    (folder / name).write_text(json.dumps(rows), encoding="utf-8")


def test_the_newest_run_wins_across_branch_named_files_to_the_second(tmp_path: Path) -> None:
    mod = "protocol/edgefleet_protocol/logs.py"
    _write(tmp_path, "2026-12-06T0230.json", [_row(mod, 86, 33)])
    _write(tmp_path, "2026-12-06T043059-s3-b.json", [_row(mod, 90, 80)])
    _write(tmp_path, "2026-12-06T043001-s3-a.json", [_row(mod, 88, 60)])

    latest = latest_per_module(tmp_path)

    assert latest[mod].source == "2026-12-06T043059-s3-b"
    assert (latest[mod].total, latest[mod].caught) == (90, 81)  # killed + timeouts
    assert latest[mod].ratio == 81 / 90


def test_mutmut_era_files_failed_runs_and_strays_do_not_count(tmp_path: Path) -> None:
    mod = "protocol/edgefleet_protocol/ids.py"
    _write(tmp_path, "2026-12-06T0100.json", [_row(mod, 41, 30)])
    _write(tmp_path, "2026-12-06T0200.json", [_row(mod, 0, 0, error="baseline failed")])
    _write(tmp_path, "2026-12-06T0300.json", [_row(mod, 50, 50, runner="mutmut")])
    _write(tmp_path, "notes.json", [_row(mod, 9, 9)])

    latest = latest_per_module(tmp_path)

    assert latest[mod].source == "2026-12-06T0100"


def test_the_table_totals_each_role_and_names_what_was_never_measured(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "2026-12-06T0100.json",
        [
            _row("protocol/edgefleet_protocol/ids.py", 40, 35),
            _row("protocol/edgefleet_protocol/errors.py", 10, 9),
            _row("edge-agent/edgefleet_agent/core/planner.py", 47, 46),
        ],
    )

    text = render(latest_per_module(tmp_path))

    assert "- **protocol**: 46 of 50 mutants killed (92.0%) over 2 modules" in text
    assert "- **edge-agent**: 47 of 47 mutants killed (100.0%) over 1 modules" in text
    assert "never measured:" in text and "`protocol/edgefleet_protocol/topics.py`" in text


def test_a_run_is_dated_by_its_files_utc_stamp_with_or_without_seconds() -> None:
    assert measured_at("2026-12-06T0230") == datetime(2026, 12, 6, 2, 30, tzinfo=UTC).timestamp()
    assert measured_at("2026-12-06T043059-s3-b") == (
        datetime(2026, 12, 6, 4, 30, 59, tzinfo=UTC).timestamp()
    )


def test_a_module_committed_to_after_its_run_is_named_stale(tmp_path: Path) -> None:
    def commit(path: str, when: str) -> None:
        (tmp_path / path).write_text(when, encoding="utf-8")
        env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "HOME": str(tmp_path)}
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
        subprocess.run([*git, "add", path], check=True, env=env)
        subprocess.run([*git, "commit", "-qm", path], check=True, env=env)

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    commit("old.py", "2026-12-06T02:00:00Z")
    commit("new.py", "2026-12-06T03:00:00Z")
    runs = {
        name: Latest(module=name, total=1, caught=1, survived=0, source="2026-12-06T0230")
        for name in ("old.py", "new.py", "never-committed.py")
    }

    assert changed_since_measured(runs, repo=tmp_path) == ["new.py"]
