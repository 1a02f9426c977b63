"""The house rules a folder listing cannot show: modules stay readable, rooms stay documented.

import-linter (``make lint``) proves the import rules; these check what it cannot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    REPO / "protocol" / "edgefleet_protocol",
    REPO / "orchestrator" / "edgefleet_orchestrator",
    REPO / "edge-agent" / "edgefleet_agent",
    REPO / "cli" / "edgefleet_cli",
)
SOURCE_ROOTS = (*PACKAGES, REPO / "bench", REPO / "mutate")
MAX_MODULE_LINES = 400


def modules(roots: tuple[Path, ...]) -> list[Path]:
    found = sorted(p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(found) > 100, f"expected the whole source tree, found {len(found)} modules"
    return found


def test_no_module_outside_tests_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in modules(SOURCE_ROOTS)
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these by role (limit {MAX_MODULE_LINES} lines): {long}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_room_says_its_role_in_its_init_docstring(package: Path) -> None:
    inits = [package / "__init__.py", *package.glob("*/__init__.py")]
    missing = [
        str(init.relative_to(REPO))
        for init in inits
        if not (ast.get_docstring(ast.parse(init.read_text())) or "").strip()
    ]
    assert missing == []


def test_no_two_test_modules_share_a_file_name() -> None:
    """pytest imports test modules by their base name (the tiers have no __init__.py), so
    two files of one name in different tiers stop the whole collection in CI."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        first = seen.setdefault(path.name, path)
        if first != path:
            clashes.append(f"{first.relative_to(REPO)} and {path.relative_to(REPO)}")
    assert not clashes, "rename one of each: " + "; ".join(clashes)
