"""``edgefleet validate``: offline, every problem of every file, exit 1 when any."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from edgefleet_cli.commands.validate import validate
from edgefleet_protocol.manifest import manifest_problems
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
TWO_NESTED_TYPOS = """\
name: web
replicas: 2
workload:
  runtime: process
  comand: ["sleep", "1"]
placement:
  stratgy: spread
"""


def cli() -> typer.Typer:
    root = typer.Typer()
    root.command("validate")(validate)
    root.command("other")(lambda: None)  # two commands: typer keeps the verb on the line
    return root


def test_two_nested_typos_are_both_reported_with_their_paths() -> None:
    problems = manifest_problems(TWO_NESTED_TYPOS, source="web.yaml")
    assert [p.field for p in problems] == ["workload.comand", "placement.stratgy"]
    assert all(p.source == "web.yaml" for p in problems)


def test_unreadable_text_is_one_problem_and_a_valid_manifest_none() -> None:
    assert len(manifest_problems("name: [unclosed", source="x.yaml")) == 1
    assert manifest_problems((REPO / "examples" / "batch-job.yaml").read_text()) == []


def test_the_command_lists_every_problem_of_every_file_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(TWO_NESTED_TYPOS)
    (tmp_path / "copy.yaml").write_text((REPO / "examples" / "batch-job.yaml").read_text())
    result = CliRunner().invoke(
        cli(), ["validate", str(tmp_path), str(REPO / "examples" / "batch-job.yaml"), "-o", "json"]
    )
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert [p["field"] for p in body["problems"]] == [
        "workload.comand",
        "placement.stratgy",
        "name",  # batch-job defined twice
    ]
    assert body["valid"] == [{"file": str(tmp_path / "copy.yaml"), "app": "batch-job"}]


def test_valid_manifests_exit_0() -> None:
    result = CliRunner().invoke(cli(), ["validate", str(REPO / "examples")])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") >= 4
