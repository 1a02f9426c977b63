"""The conformance suite (tests/conformance) covers the contract: every topic of
docs/protocol.md's topic table and every error code of its error-code table is pinned by at
least one conformance test, and every section a test names is a heading of the doc.

A unit test on purpose (no broker, runs in every ``pytest tests/unit``): whoever adds a
topic or an error code to the doc learns here that it needs a conformance test. The pins are
read from the test sources (``@pins(...)`` decorators), not imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
CONFORMANCE = TESTS / "conformance"
DOC = (TESTS.parent / "docs" / "protocol.md").read_text(encoding="utf-8")

# Documented but not pinned yet, each with the reason; an entry here is a debt, and the
# check fails once the entry is pinned (so the list only shrinks).
NOT_YET_PINNED: dict[str, str] = {}


def table_first_cells(header: str) -> list[str]:
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    cells = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells.append(re.findall(r"`([^`]+)`", line.split("|")[1])[0])
    return cells


def topic_names() -> dict[str, str]:
    tree = ast.parse((CONFORMANCE / "conformance_pins.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TOPIC":
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("conformance_pins.TOPIC not found")


def pins() -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(test, section, topics, codes) of every ``@pins`` in tests/conformance."""
    names = topic_names()
    found = []
    for path in sorted(CONFORMANCE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "pins":
                    section = ast.literal_eval(deco.args[0])
                    kw = {k.arg: ast.literal_eval(k.value) for k in deco.keywords}
                    topics = tuple(names[t] for t in kw.get("topics", ()))
                    found.append((node.name, section, topics, tuple(kw.get("codes", ()))))
    return found


def test_every_documented_topic_is_pinned_by_a_conformance_test() -> None:
    documented = set(table_first_cells("| topic | writer |"))
    assert len(documented) >= 15
    pinned = {t for _, _, topics, _ in pins() for t in topics}
    assert sorted(documented - pinned - set(NOT_YET_PINNED)) == []
    assert sorted(pinned & set(NOT_YET_PINNED)) == [], "pinned now: drop it from NOT_YET_PINNED"


def test_every_documented_error_code_is_pinned_by_a_conformance_test() -> None:
    documented = set(table_first_cells("| code | meaning |"))
    assert len(documented) >= 6
    pinned = {c for _, _, _, codes in pins() for c in codes}
    assert sorted(documented - pinned - set(NOT_YET_PINNED)) == []
    assert sorted(pinned & set(NOT_YET_PINNED)) == [], "pinned now: drop it from NOT_YET_PINNED"


def test_every_pinned_section_is_a_heading_of_the_doc() -> None:
    headings = {m.strip() for m in re.findall(r"^#{2,4} (.+)$", DOC, re.MULTILINE)}
    assert len(pins()) >= 20
    unknown = sorted({section for _, section, _, _ in pins()} - headings)
    assert unknown == [], f"sections not in docs/protocol.md: {unknown}"
