"""The latest kill ratio of every target, read from all the results files at once.

Several engineers measure different modules on their own branches, and each run writes its
own results file (``results/<stamp>[-<branch>].json``). What counts for a module is its most
recent run; this prints that table, and the totals per role, so nobody assembles it by hand.
Only runs of the AST runner count (they carry the ``fast`` field); the mutmut 2 files of
2026-12-05 used other operators and are history.

``python -m mutate.summary``
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mutate.run import REPO, RESULTS
from mutate.targets import TARGETS

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{4})(\d{2})?")


@dataclass(frozen=True)
class Latest:
    """One module's most recent measurement, and the file it came from."""

    module: str
    total: int
    caught: int
    survived: int
    source: str

    @property
    def ratio(self) -> float:
        return self.caught / self.total if self.total else 0.0


def _order(path: Path) -> tuple[str, str]:
    """Chronological: the stamp's minute, then its seconds (older files have none)."""
    found = _STAMP.match(path.name)
    if not found:
        return ("", "")
    return (found.group(1), found.group(2) or "00")


def latest_per_module(folder: Path = RESULTS) -> dict[str, Latest]:
    """Each module's last error-free AST-runner measurement across every results file."""
    latest: dict[str, Latest] = {}
    for path in sorted(folder.glob("*.json"), key=_order):
        if not _STAMP.match(path.name):
            continue
        for row in json.loads(path.read_text(encoding="utf-8")):
            # A MUTATE_ONLY check of some mutants is never a module's figure.
            if "fast" not in row or row.get("error") or row.get("only") or not row.get("total"):
                continue
            latest[row["module"]] = Latest(
                module=row["module"],
                total=int(row["total"]),
                caught=int(row["killed"]) + int(row["timeout"]),
                survived=int(row["survived"]),
                source=path.stem,
            )
    return latest


def measured_at(source: str) -> float:
    """The epoch second a results file's run started (its name's UTC stamp)."""
    found = _STAMP.match(source)
    assert found is not None, source
    stamp = found.group(1) + (found.group(2) or "00")
    return datetime.strptime(stamp, "%Y-%m-%dT%H%M%S").replace(tzinfo=UTC).timestamp()


def changed_since_measured(latest: dict[str, Latest], repo: Path = REPO) -> list[str]:
    """Modules committed to after their latest run: their figure describes older code."""
    stale = []
    for name, m in sorted(latest.items()):
        last = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", name],
            cwd=repo, capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        if last and int(last) > measured_at(m.source):
            stale.append(name)
    return stale


def role(module: str) -> str:
    """The package a module belongs to: the unit the issue's kill-ratio targets name."""
    return module.split("/", 1)[0]


def render(latest: dict[str, Latest]) -> str:
    lines = [
        "| module | mutants | killed | survived | kill ratio | file |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(latest):
        m = latest[name]
        lines.append(
            f"| `{name}` | {m.total} | {m.caught} | {m.survived} | {m.ratio:.1%} | `{m.source}` |"
        )
    lines.append("")
    for group in sorted({role(n) for n in latest}):
        rows = [m for n, m in latest.items() if role(n) == group]
        total = sum(m.total for m in rows)
        caught = sum(m.caught for m in rows)
        lines.append(
            f"- **{group}**: {caught} of {total} mutants killed ({caught / total:.1%})"
            f" over {len(rows)} modules"
        )
    stale = changed_since_measured(latest)
    if stale:
        lines.append(f"- changed since measured: {', '.join(f'`{m}`' for m in stale)}")
    missing = sorted(set(TARGETS) - set(latest))
    if missing:
        lines.append(f"- never measured: {', '.join(f'`{m}`' for m in missing)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m mutate.summary", file=sys.stderr)
        return 2
    print(render(latest_per_module()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
