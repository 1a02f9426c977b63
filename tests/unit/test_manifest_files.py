"""Reading manifest files: the limits, refusals and words an author meets.

``edgefleet validate`` (``manifest_problems``) and ``deploy`` (``load_manifest``) read a
manifest the same way; these tests pin the refusals of the text itself (size, encoding,
YAML), the ``file: field: reason`` form of every error, and that validate lists each
problem in the very words deploy would use for it alone.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from edgefleet_protocol.manifest import (
    ManifestError,
    load_manifest,
    load_manifests,
    manifest_files,
    manifest_problems,
)
from edgefleet_protocol.manifest.rules import MAX_MANIFEST_BYTES
from test_cli_validate import cli
from test_manifest import BAD, GOOD, with_changes
from typer.testing import CliRunner

KIB_256 = 256 * 1024
"""The documented bound of a manifest's text (examples/README.md), in bytes."""


def test_the_size_bound_is_the_documented_256_kib() -> None:
    assert MAX_MANIFEST_BYTES == KIB_256
    readme = (Path(__file__).resolve().parents[2] / "examples" / "README.md").read_text()
    assert f"at most 256 KiB ({KIB_256} bytes)" in readme


def padded_to(size: int, pad: str = "x") -> str:
    """GOOD as YAML, padded with a trailing comment to exactly ``size`` UTF-8 bytes."""
    head = yaml.safe_dump(GOOD) + "# "
    room = size - len(head.encode())
    width = len(pad.encode())
    text = head + pad * (room // width) + "x" * (room % width)
    assert len(text.encode()) == size
    return text


def test_text_of_exactly_256_kib_loads_and_one_byte_more_is_refused() -> None:
    assert load_manifest(padded_to(KIB_256)).name == "web"
    with pytest.raises(ManifestError) as caught:
        load_manifest(padded_to(KIB_256 + 1), source="big.yaml")
    assert (caught.value.field, caught.value.reason) == (
        "big.yaml",
        f"is larger than {KIB_256} bytes",
    )


def test_the_bound_counts_utf8_bytes_not_characters() -> None:
    text = padded_to(KIB_256 + 1, pad="é")  # two bytes each: fewer characters than bytes
    assert len(text) <= KIB_256
    with pytest.raises(ManifestError, match="is larger than"):
        load_manifest(text)


def test_bytes_of_exactly_256_kib_load_and_one_byte_more_are_refused_with_the_size() -> None:
    assert load_manifest(padded_to(KIB_256).encode()).name == "web"
    with pytest.raises(ManifestError) as caught:
        load_manifest(padded_to(KIB_256 + 1).encode(), source="big.yaml")
    assert (caught.value.field, caught.value.reason) == (
        "big.yaml",
        f"{KIB_256 + 1} bytes exceeds {KIB_256}",
    )


def test_bytes_that_are_not_utf8_are_refused_at_the_first_bad_byte() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(b"name: web\n\xff\n", source="app.yaml")
    assert (caught.value.field, caught.value.reason) == ("app.yaml", "is not UTF-8 (byte 10)")


# (why, text, the reason's exact start): the parser's "manifest " prefix is dropped, the
# source already says which manifest.
TEXT_REFUSALS: list[tuple[str, str, str]] = [
    ("empty", " \n", "text is empty"),
    ("a list", "- a\n", "must be a mapping, got list"),
    ("broken YAML", "name: [unclosed\n", "is not valid YAML/JSON: "),
    ("a YAML date", "name: web\nsince: 2024-01-01\n", "at manifest.since: "),
]


@pytest.mark.parametrize(
    ("text", "start"), [t[1:] for t in TEXT_REFUSALS], ids=[t[0] for t in TEXT_REFUSALS]
)
def test_unreadable_text_is_refused_in_the_parsers_words_without_its_prefix(
    text: str, start: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(text, source="app.yaml")
    assert caught.value.reason.startswith(start), caught.value.reason
    assert [(p.field, p.reason) for p in manifest_problems(text, source="app.yaml")] == [
        ("app.yaml", caught.value.reason)
    ]


def test_an_error_reads_file_field_reason_everywhere_it_is_shown() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(json.dumps(with_changes(replicas=None)), source="web.yaml")
    line = "web.yaml: replicas: is required with mode: replicated"
    assert str(caught.value).startswith(line)
    assert str(caught.value) == (
        f"{caught.value.source}: {caught.value.field}: {caught.value.reason}"
    )
    assert caught.value.args == (str(caught.value),)  # what repr() and loggers show
    assert line in repr(caught.value)


def test_without_a_source_the_text_is_called_manifest() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest("")
    assert str(caught.value) == "manifest: manifest: text is empty"
    (problem,) = manifest_problems("")
    assert str(problem) == "manifest: manifest: text is empty"
    (problem,) = manifest_problems(json.dumps(with_changes(name=None)))
    assert str(problem) == "manifest: name: is required"


@pytest.mark.parametrize(("data", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validate_reports_a_lone_refusal_in_the_words_deploy_uses(
    data: dict[str, Any], field: str, words: str
) -> None:
    text = json.dumps(data)
    with pytest.raises(ManifestError) as caught:
        load_manifest(text, source="app.yaml")
    problems = manifest_problems(text, source="app.yaml")
    assert [(p.source, p.field, p.reason) for p in problems] == [
        ("app.yaml", field, caught.value.reason)
    ]
    assert words in problems[0].reason


def test_validate_lists_every_problem_each_in_its_own_words() -> None:
    text = json.dumps(
        with_changes(
            replicas=-1,  # a bound, its limit in the error's context
            workload={"runtime": "podman", "command": ["x"]},  # a choice
            disconnect={"grace_s": -1},
            placement={"sites": ["Site A"], "max_per_node": 0},  # validators' own words
        )
    )
    assert [(p.field, p.reason) for p in manifest_problems(text)] == [
        ("workload.runtime", "Input should be 'docker', 'process' or 'simulated'"),
        ("replicas", "Input should be greater than or equal to 0"),
        (
            "placement.sites.0",
            "'Site A' is not a valid id: 1-63 characters of a-z, 0-9 and '-', starting with"
            " a letter or digit (found ' ', 'A', 'S')",
        ),
        (
            "placement.max_per_node",
            "must be at least 1 (0 would allow no replica anywhere); leave it out for no limit",
        ),
        ("disconnect.grace_s", "Input should be greater than or equal to 0"),
    ]


def test_an_unknown_key_hides_the_other_problems_of_its_model() -> None:
    # Unknown keys are refused before the fields are read: fix the typo first.
    text = json.dumps(with_changes(replica=3, replicas=-1))
    (problem,) = manifest_problems(text)
    assert problem.field == "replica"
    assert problem.reason.startswith("unknown field(s) replica; allowed: autoscale, ")


def test_a_missing_path_is_refused_as_path_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for read in (manifest_files, load_manifests):
        with pytest.raises(ManifestError) as caught:
            read(missing)
        assert (caught.value.source, caught.value.field, caught.value.reason) == (
            str(missing),
            "path",
            "does not exist",
        )


def test_a_file_that_cannot_be_read_is_refused_naming_it_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "web.yaml"
    file.write_text(yaml.safe_dump(GOOD))

    def refuse(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # root reads any mode: refuse here
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert (caught.value.source, caught.value.field, caught.value.reason) == (
        str(file),
        str(file),
        "cannot be read (Permission denied)",
    )


def test_an_app_defined_twice_names_the_file_that_defined_it_first(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "b.json").write_text(json.dumps(GOOD))
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert (caught.value.source, caught.value.field, caught.value.reason) == (
        str(tmp_path / "b.json"),
        "name",
        f"app 'web' is already defined in {tmp_path / 'a.yaml'}",
    )


def test_the_validate_command_reports_a_cross_field_rule_instead_of_crashing(
    tmp_path: Path,
) -> None:
    # Regression: a rule checked across fields (here replicas with mode: daemon) raised
    # KeyError out of `edgefleet validate`, a traceback instead of the problem.
    file = tmp_path / "web.yaml"
    file.write_text(yaml.safe_dump(with_changes(mode="daemon")))
    result = CliRunner().invoke(cli(), ["validate", str(file)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{file}: replicas: must be left out with mode: daemon" in result.output


def test_braces_in_a_refused_value_are_reported_as_they_are() -> None:
    text = json.dumps(with_changes(placement={"sites": ["{site}"]}, mode="daemon"))
    (problem,) = manifest_problems(text)
    assert problem.field == "placement.sites.0"
    assert problem.reason.startswith("'{site}' is not a valid id")
