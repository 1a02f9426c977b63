"""``make mutate``: mutation testing of the contract and decision modules.

Why: a suite can pass while it bites nothing; a mutant (one operator, constant or
condition changed, mutate/mutants.py) that no test kills is a behaviour nobody pins. For
each target module, against the unit tests meant to pin it: mutate/engine.py tries the
mutants inside function bodies in forked children of one pytest session; the rest (and
every survivor there, to confirm it) are tried here in a fresh import of the mutated module
(mutate/hook.py), forked from this warm process. Nothing is written to the checkout. It
runs at nice 19, one module at a time, and writes the kill ratio per module and every
surviving mutant to ``mutate/results/<date>.md`` (and the same as JSON), like ``bench/``
records its figures. Not part of CI.

    python -m mutate.run                     # every target
    python -m mutate.run protocol/edgefleet_protocol/ids.py   # only these, in this order
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mutate import hook
from mutate import slow as slow_runner
from mutate.forking import fork_quiet
from mutate.targets import TARGETS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "mutate" / "results"

WARM_ARGS = slow_runner.WARM_ARGS


@dataclass
class Outcome:
    module: str
    tests: list[str]
    total: int = 0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    uncovered: int = 0
    """Survivors no test even reached (counted in ``survived`` too)."""
    fast: int = 0
    """Mutants decided in the forked in-process runner (the rest in a fresh import)."""
    seconds: float = 0.0
    slow_seconds: float = 0.0
    """Wall seconds per mutant tried in a fresh import (baselines included)."""
    slow_cpu_seconds: float = 0.0
    """CPU seconds (user + system) per such mutant, baselines left out: the cost to a
    shared machine, which wall time under load hides."""
    baseline_cpu_seconds: float = 0.0
    """CPU seconds of the unmutated runs before them (one cold; a warm start runs two)."""
    survivors: list[str] = field(default_factory=list)
    error: str = ""
    only: str = ""
    """``MUTATE_ONLY``: the mutant numbers tried, when not all were."""

    @property
    def ratio(self) -> float:
        caught = self.killed + self.timeout
        tested = caught + self.survived
        return caught / tested if tested else 0.0


ROLES = ("protocol", "orchestrator", "edge-agent", "cli")


def scratch_copy() -> Path:
    """The checkout's files (tracked, with uncommitted edits, and new files git does not
    ignore), in a temp dir: a run measures one fixed tree however the checkout moves
    meanwhile (a rebase, new tests). New files count so that a test file not yet added to
    git still runs, rather than the baseline failing with "file not found"."""
    dest = Path(tempfile.mkdtemp(prefix="edgefleet-mutate-"))
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in files:
        src = REPO / raw.decode()
        if raw and src.is_file():
            (dest / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / raw.decode())
    return dest


def _paths(work: Path) -> list[str]:
    """The scratch copy's packages first, ahead of the editable install's originals."""
    return [str(work / r) for r in ROLES] + [str(work)]


def _slow_one(
    work: Path, module: str, index: int | None, tests: list[str], deadline_s: float
) -> str:
    """One mutant (or none, for the baseline) in a forked child that imports it afresh."""

    def body() -> int:
        os.chdir(work)
        sys.path[:0] = _paths(work)
        if index is not None:
            hook.install(Path(module), index)
        import pytest

        return int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *WARM_ARGS, *tests]))

    return slow_runner.wait(fork_quiet(body, on_error=70), deadline_s)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cold(
    work: Path, module: str, slow: list[dict[str, Any]], tests: list[str], spent: list[float]
) -> str:
    """Every mutant in ``slow`` in a cold child (no warm start): '' when done, else why not.
    The CPU seconds of the baseline run are added to ``spent``."""
    t0, cpu0 = time.monotonic(), _children_cpu()
    base = _slow_one(work, module, None, tests, deadline_s=600.0)
    spent.append(_children_cpu() - cpu0)
    if base != "survived":
        return f"the unmutated tests do not pass in a fresh import ({base})"
    deadline = 60.0 + 5 * (time.monotonic() - t0)
    for n, m in enumerate(slow, 1):
        m["status"] = _slow_one(work, module, m["index"], tests, deadline)
        m["slow"] = True
        if n % 25 == 0:
            print(f"  {n}/{len(slow)} afresh", flush=True)
    return ""


def _warm(
    work: Path, module: str, slow: list[dict[str, Any]], tests: list[str], spent: list[float]
) -> str:
    """Every mutant in ``slow`` from a warm zygote (mutate/slow.py), forked from here so
    nothing it imports stays: '' when done, else why the cold way must be taken."""
    out = Path(tempfile.mkdtemp(prefix="edgefleet-mutate-")) / "slow.json"
    pid = os.fork()
    if pid == 0:  # the zygote: never returns
        code = 70
        try:
            code = _zygote(work, module, slow, tests, out)
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
    found = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    shutil.rmtree(out.parent, ignore_errors=True)
    if "statuses" not in found:
        return str(found.get("why", "the warm zygote died"))
    spent.append(float(found["baseline_cpu"]))
    for m in slow:
        m["status"], m["slow"] = found["statuses"][str(m["index"])], True
    return ""


def _zygote(
    work: Path, module: str, slow: list[dict[str, Any]], tests: list[str], out: Path
) -> int:
    zygote = slow_runner.Zygote(work, [work / r for r in ROLES], module, tests)
    t0, cpu0 = time.monotonic(), _children_cpu()
    base = zygote.cold_baseline()
    deadline = 60.0 + 5 * (time.monotonic() - t0)
    why = f"the unmutated tests do not pass cold ({base})" if base != "survived" else ""
    why = why or zygote.warm_up()
    if not why and (base := zygote.run(None, [], 600.0)) != "survived":
        why = f"the unmutated tests do not pass warm ({base})"
    if why:
        out.write_text(json.dumps({"why": why}), encoding="utf-8")
        return 0
    baseline_cpu = _children_cpu() - cpu0
    statuses: dict[int, str] = {}
    for n, m in enumerate(slow, 1):
        statuses[m["index"]] = zygote.run(m["index"], m.get("reach", []), deadline)
        if n % 25 == 0:
            print(f"  {n}/{len(slow)} afresh", flush=True)
    out.write_text(json.dumps({"statuses": statuses, "baseline_cpu": baseline_cpu}), "utf-8")
    zygote.scratch.unlink(missing_ok=True)
    return 0


def run_target(work: Path, module: str, tests: list[str]) -> Outcome:
    outcome = Outcome(module, tests)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgefleet-mutate-") as tmp:
        out = Path(tmp) / "fast.json"
        env = dict(os.environ, MUTATE_TARGET=module, MUTATE_OUT=str(out))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(_paths(work))
        ran = subprocess.run(
            ["nice", "-n", "19", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "mutate.engine", *tests],
            cwd=work, env=env, check=False, capture_output=True, text=True,
        )  # fmt: skip
        if not out.exists():
            tail = [line for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
            outcome.error = tail[-1][:300] if tail else f"pytest exited {ran.returncode}"
            return outcome
        mutants = json.loads(out.read_text(encoding="utf-8"))
    if only := os.environ.get("MUTATE_ONLY", ""):
        # A check of some mutants (e.g. survivors after a new test), never a module's figure.
        mutants = [m for m in mutants if str(m["index"]) in only.split(",")]
        outcome.only = only
    slow = [m for m in mutants if m["status"] == "slow"]
    if os.environ.get("MUTATE_VERIFY"):
        # Check the in-process runner against the faithful one: every mutant it decided is
        # tried again in a fresh import, and any disagreement is reported as an error.
        for m in mutants:
            if m["status"] in ("killed", "timeout", "uncovered"):
                m["fast_status"] = m["status"]
                slow.append(m)
    print(f"  {len(mutants)} mutants, {len(mutants) - len(slow)} decided in-process;"
          f" {len(slow)} to import afresh", flush=True)  # fmt: skip
    if slow:
        t0, cpu0 = time.monotonic(), _children_cpu()
        cold = os.environ.get("MUTATE_COLD")
        spent: list[float] = []
        why = "MUTATE_COLD is set" if cold else _warm(work, module, slow, tests, spent)
        if why:
            print(f"  cold children: {why}", flush=True)
            why = _cold(work, module, slow, tests, spent)
        if why:
            outcome.error = why
            return outcome
        outcome.slow_seconds = round((time.monotonic() - t0) / len(slow), 2)
        outcome.baseline_cpu_seconds = round(sum(spent), 1)
        mutants_cpu = _children_cpu() - cpu0 - sum(spent)
        outcome.slow_cpu_seconds = round(mutants_cpu / len(slow), 2)
    source_lines = (work / module).read_text(encoding="utf-8").splitlines()
    for m in mutants:
        outcome.total += 1
        status = m["status"]
        if status in ("killed", "timeout"):
            setattr(outcome, status, getattr(outcome, status) + 1)
        elif status in ("survived", "uncovered"):
            outcome.survived += 1
            outcome.uncovered += status == "uncovered"
            where = source_lines[m["line"] - 1].strip()
            tag = " (no test reaches it)" if status == "uncovered" else ""
            outcome.survivors.append(
                f"line {m['line']} col {m['col']}{tag}: `{m['before']}` → `{m['after']}`"
                f" (in `{where[:100]}`) [#{m['index']}]"
            )
        else:
            outcome.error = f"mutant {m['index']}: {status}"
        fast_said = m.get("fast_status")
        same = {"uncovered": "survived", "timeout": "killed"}
        if fast_said and same.get(fast_said, fast_said) != same.get(status, status):
            outcome.error += f" mutant {m['index']}: in-process {fast_said}, afresh {status};"
        outcome.fast += not m.get("slow", False)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def report(outcomes: list[Outcome], when: str) -> str:
    lines = [
        f"# Mutation testing, {when}",
        "",
        "`make mutate` (mutate/mutants.py's operators on Python's AST, niced, one module at a",
        f"time against the unit tests meant to pin it) on {platform.node()}"
        f" ({os.cpu_count()} CPUs, Python {platform.python_version()}). Killed includes",
        "timeouts. A survivor is a change no test noticed: each is listed below, to be killed",
        "by a test or explained as equivalent (mutate/results/*-notes.md).",
        "",
        "| module | mutants | killed | survived (no test reaches) | kill ratio | tests | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.error:
            lines.append(f"| `{o.module}` | not mutated: {o.error} | | | | | |")
            continue
        only = f" (only mutants {o.only})" if o.only else ""
        lines.append(
            f"| `{o.module}`{only} | {o.total} | {o.killed + o.timeout} | "
            f"{o.survived} ({o.uncovered}) | {o.ratio:.1%} | "
            f"{', '.join(Path(t).name for t in o.tests)} | "
            f"{o.seconds:.0f} |"
        )
    for o in outcomes:
        if o.survivors:
            lines += ["", f"## Survivors in `{o.module}`", ""]
            lines += [f"- {s}" for s in o.survivors]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    chosen = {k: TARGETS[k] for k in argv if k in TARGETS} if argv else dict(TARGETS)
    if not chosen or len(chosen) != len(argv or TARGETS):
        print(f"unknown target(s); known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    os.nice(19)  # two shared cores: every mutant runs at the lowest priority
    # Warm once, fork per fresh-import mutant: what every child would otherwise import anew.
    # hypothesis alone is most of a child's start-up (it loads as a pytest plugin even where
    # no test uses it); imported here, pytest warns that it cannot rewrite its asserts,
    # which each child is told to ignore (WARM_ARGS).
    import hypothesis  # noqa: F401
    import pydantic  # noqa: F401
    import pytest  # noqa: F401
    import pytest_asyncio  # noqa: F401

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Seconds and the branch in the name: engineers run at once on their own branches and
    # merge their results files into one folder, so two runs must never share a name.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S") + _branch_suffix()
    outcomes: list[Outcome] = []
    work = scratch_copy()
    for module, tests in chosen.items():
        print(f"mutating {module} ...", flush=True)
        outcome = run_target(work, module, tests)
        print(
            f"  {outcome.total} mutants, {outcome.survived} survived,"
            f" kill ratio {outcome.ratio:.0%} ({outcome.seconds:.0f} s,"
            f" {outcome.slow_seconds} s, {outcome.slow_cpu_seconds} s CPU per fresh import"
            f" + {outcome.baseline_cpu_seconds} s CPU of baselines)"
            f" {outcome.error}",
            flush=True,
        )
        outcomes.append(outcome)
        write(outcomes, when, stamp)  # after every module: a long run is never all lost
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {RESULTS / (stamp + '.md')}")
    return 0


def _branch_suffix() -> str:
    """`-<branch>` for a results file's name (empty off a branch, e.g. a detached CI tree)."""
    found = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", found)
    return f"-{safe}" if safe and safe != "HEAD" else ""


def write(outcomes: list[Outcome], when: str, stamp: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}.md").write_text(report(outcomes, when), encoding="utf-8")
    (RESULTS / f"{stamp}.json").write_text(
        json.dumps([asdict(o) | {"ratio": o.ratio} for o in outcomes], indent=2) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
