"""The conformance suite covers the contract: every topic of docs/protocol.md's topic table
and every error code of its error-code table is pinned by at least one conformance test,
and every section a test names is a heading of the doc. Runs without a broker."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from conformance_pins import PINS, TOPIC

HERE = Path(__file__).resolve().parent
DOC = (HERE.parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")


def table_first_cells(header: str) -> list[str]:
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    cells = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells.append(re.findall(r"`([^`]+)`", line.split("|")[1])[0])
    return cells


def load_pins() -> None:
    for path in sorted(HERE.glob("test_*.py")):
        if path.stem != "test_coverage":
            importlib.import_module(path.stem)


def test_coverage_every_documented_topic_is_pinned_by_a_conformance_test() -> None:
    load_pins()
    documented = table_first_cells("| topic | writer |")
    assert len(documented) >= 13
    assert set(documented) <= set(TOPIC.values()), "a new topic row: add it to TOPIC"
    pinned = {t for pin in PINS for t in pin.topics}
    assert sorted(set(documented) - pinned) == []


def test_coverage_every_documented_error_code_is_pinned_by_a_conformance_test() -> None:
    load_pins()
    documented = table_first_cells("| code | meaning |")
    assert len(documented) >= 6
    pinned = {c for pin in PINS for c in pin.codes}
    assert sorted(set(documented) - pinned) == []


def test_coverage_every_pinned_section_is_a_heading_of_the_doc() -> None:
    load_pins()
    headings = {m.strip() for m in re.findall(r"^#{2,4} (.+)$", DOC, re.MULTILINE)}
    unknown = sorted({pin.section for pin in PINS} - headings)
    assert unknown == [], f"sections not in docs/protocol.md: {unknown}"
