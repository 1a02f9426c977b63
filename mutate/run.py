"""``make mutate``: mutation testing (mutmut 2) of the contract and decision modules.

Why: a suite can pass while it bites nothing; a mutant (one operator, constant or
condition changed) that no test kills is a behaviour nobody pins. This runs mutmut over
each target module against the tests that are meant to pin it, in a scratch copy of the
checkout (mutmut edits files in place), niced, one target at a time, and writes the kill
ratio per module and every surviving mutant to ``mutate/results/<date>.md`` (and the same
as JSON), like ``bench/`` records its figures. Not part of CI: it costs tens of minutes of
CPU on 2 cores.

    python -m mutate.run                     # every target
    python -m mutate.run protocol/edgefleet_protocol/ids.py   # only these, in this order
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "mutate" / "results"

# (module, the tests meant to pin it). Unit tests only: a mutant run must take seconds.
TARGETS: dict[str, list[str]] = {
    "protocol/edgefleet_protocol/ids.py": ["tests/unit/test_ids_topics.py"],
    "protocol/edgefleet_protocol/topics.py": [
        "tests/unit/test_ids_topics.py",
        "tests/unit/test_protocol_doc.py",
    ],
    "protocol/edgefleet_protocol/codec.py": [
        "tests/unit/test_codec_models.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/commands.py": [
        "tests/unit/test_command_contract_rules.py",
        "tests/unit/test_command_identity_rules.py",
        "tests/unit/test_scaling_commands.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_event_catalogue.py",
    ],
    "protocol/edgefleet_protocol/events.py": ["tests/unit/test_event_catalogue.py"],
    "edge-agent/edgefleet_agent/core/admission.py": [
        "tests/unit/test_agent_admission.py",
        "tests/unit/test_agent_core_rules.py",
    ],
    "edge-agent/edgefleet_agent/core/planner.py": ["tests/unit/test_agent_planner.py"],
    "orchestrator/edgefleet_orchestrator/reconcile/documents.py": [
        "tests/unit/test_reconcile.py",
        "tests/unit/test_reconcile_documents.py",
    ],
}


@dataclass
class Outcome:
    module: str
    tests: list[str]
    total: int = 0
    killed: int = 0
    timeout: int = 0
    suspicious: int = 0
    survived: int = 0
    skipped: int = 0
    seconds: float = 0.0
    survivors: list[str] = field(default_factory=list)
    error: str = ""
    """Why nothing was mutated (mutmut 2's parser, parso, cannot read ``match`` statements)."""

    @property
    def ratio(self) -> float:
        caught = self.killed + self.timeout + self.suspicious
        tested = caught + self.survived
        return caught / tested if tested else 0.0


def scratch_copy() -> Path:
    """The tracked files of the checkout (with uncommitted edits), in a temp dir."""
    dest = Path(tempfile.mkdtemp(prefix="edgefleet-mutate-"))
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = Path(raw.decode())
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def run_target(work: Path, module: str, tests: list[str]) -> Outcome:
    outcome = Outcome(module, tests)
    cache = work / ".mutmut-cache"
    cache.unlink(missing_ok=True)
    # The scratch copy's packages first on the path, so the mutated files are imported
    # rather than the editable install's originals.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        str(work / p) for p in ("protocol", "orchestrator", "edge-agent", "cli")
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider " + " ".join(tests)
    started = time.monotonic()
    ran = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run",
         "--paths-to-mutate", module, "--tests-dir", "tests", "--runner", runner,
         "--no-progress", "--simple-output"],
        cwd=work, env=env, check=False, capture_output=True, text=True,
    )  # fmt: skip
    outcome.seconds = round(time.monotonic() - started, 1)
    # The cache is mutmut 2's own record: one row per mutant with its status.
    statuses: list[str] = []
    if cache.exists():
        with contextlib.closing(sqlite3.connect(cache)) as db:
            statuses = [row[0] for row in db.execute("SELECT status FROM Mutant")]
    for status in statuses:
        outcome.total += 1
        if status == "ok_killed":
            outcome.killed += 1
        elif status == "bad_timeout":
            outcome.timeout += 1
        elif status == "ok_suspicious":
            outcome.suspicious += 1
        elif status == "bad_survived":
            outcome.survived += 1
        else:  # untested, skipped
            outcome.skipped += 1
    survivors = subprocess.run(
        [sys.executable, "-m", "mutmut", "result-ids", "survived"], cwd=work, env=env,
        check=False, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    if outcome.total == 0:
        tail = [line for line in (ran.stderr + ran.stdout).splitlines() if line.strip()]
        outcome.error = tail[-1][:300] if tail else f"mutmut exited {ran.returncode}"
    for mutant in survivors:
        diff = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", mutant], cwd=work, env=env,
            check=False, capture_output=True, text=True,
        ).stdout  # fmt: skip
        outcome.survivors.append(diff.strip())
    return outcome


def report(outcomes: list[Outcome], when: str) -> str:
    lines = [
        f"# Mutation testing, {when}",
        "",
        "`make mutate` (mutmut 2, niced, one module at a time against the unit tests meant to",
        "pin it). Killed includes timeouts. A survivor is a change no test noticed: each is",
        "listed below, to be killed by a test or explained as equivalent.",
        "",
        "| module | mutants | killed | survived | kill ratio | tests | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.error:
            lines.append(f"| `{o.module}` | not mutated: {o.error} | | | | | |")
            continue
        lines.append(
            f"| `{o.module}` | {o.total} | {o.killed + o.timeout + o.suspicious} | "
            f"{o.survived} | {o.ratio:.0%} | {', '.join(Path(t).name for t in o.tests)} | "
            f"{o.seconds:.0f} |"
        )
    for o in outcomes:
        if o.survivors:
            lines += ["", f"## Survivors in `{o.module}`", ""]
            for diff in o.survivors:
                lines += ["```diff", diff, "```", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    chosen = {k: TARGETS[k] for k in argv if k in TARGETS} if argv else dict(TARGETS)
    if not chosen:
        print(f"unknown target(s); known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    work = scratch_copy()
    outcomes: list[Outcome] = []
    try:
        for module, tests in chosen.items():
            print(f"mutating {module} ...", flush=True)
            outcome = run_target(work, module, tests)
            print(
                f"  {outcome.total} mutants, {outcome.survived} survived,"
                f" kill ratio {outcome.ratio:.0%} ({outcome.seconds:.0f} s)",
                flush=True,
            )
            outcomes.append(outcome)
            write(outcomes, when, stamp)  # after every module: a long run is never all lost
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {RESULTS / (stamp + '.md')}")
    return 0


def write(outcomes: list[Outcome], when: str, stamp: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}.md").write_text(report(outcomes, when), encoding="utf-8")
    (RESULTS / f"{stamp}.json").write_text(
        json.dumps([asdict(o) | {"ratio": o.ratio} for o in outcomes], indent=2) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
