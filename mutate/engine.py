"""The fast half of ``make mutate``: a pytest plugin that tries mutants in forked children.

Why in-process: a fresh interpreter per mutant (mutmut 2's way) costs about a second of CPU
before the first test runs, and the machine is two shared cores. Here one pytest session
collects the module's tests once, runs them once with a line tracer on the target file (so
it knows which tests reach which lines, and which functions already ran at import time),
then, for each mutant whose change lies inside a function body, forks: the child swaps the
mutated code object into every live function compiled from that ``def`` (so names imported
elsewhere see it too) and runs only the tests that reached the changed lines. A failure is
a kill; running past the deadline is a timeout (counted as killed, as mutmut does).

Everything else is marked ``slow`` for run.py to try in a fresh import of the mutated module
(mutate/hook.py): changes at import time (module or class level, defaults, decorators), a
function that ran at import time, and every *survivor* here, so a survivor is only ever
reported after the faithful way agreed. A mutant no test reaches is a survivor outright.

Enabled only with ``MUTATE_TARGET`` (the file) and ``MUTATE_OUT`` (where the JSON goes).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mutate.forking import fork_quiet, reap
from mutate.mutants import enumerate_mutants, mutated_tree

TARGET = os.environ.get("MUTATE_TARGET", "")
PATH = str(Path(TARGET).resolve()) if TARGET else ""
_import_calls: set[str] = set()
_current: set[int] | None = None


def _local(frame: Any, event: str, arg: Any) -> Any:
    if event == "line" and _current is not None:
        _current.add(frame.f_lineno)
    return _local


def _global(frame: Any, event: str, arg: Any) -> Any:
    if frame.f_code.co_filename != PATH:
        return None
    if _current is None:
        _import_calls.add(frame.f_code.co_qualname)
        return None
    _current.add(frame.f_lineno)
    return _local


if PATH:
    sys.settrace(_global)
    threading.settrace(_global)


def _run_items(items: list[pytest.Item]) -> bool:
    """Run ``items`` quietly; True when every one passed."""
    from _pytest.runner import runtestprotocol

    for n, item in enumerate(items):
        nextitem = items[n + 1] if n + 1 < len(items) else None
        if any(r.failed for r in runtestprotocol(item, nextitem=nextitem, log=False)):
            return False
    return True


def _patch(source: str, index: int, qualname: str, first_line: int) -> bool:
    code = compile(mutated_tree(source, index), PATH, "exec")
    new = next(
        (
            c
            for c in iter_code(code)
            if c.co_qualname == qualname and c.co_firstlineno == first_line
        ),
        None,
    )
    if new is None:
        return False
    patched = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType):
            old = obj.__code__
            if (
                old.co_filename == PATH
                and old.co_qualname == qualname
                and old.co_firstlineno == first_line
            ):
                obj.__code__ = new
                patched += 1
    return patched > 0


def _try(source: str, m: Any, items: list[pytest.Item], deadline_s: float) -> str:
    def body() -> int:
        if not _patch(source, m.index, m.scope, m.scope_line):
            return 3
        return 0 if _run_items(items) else 1

    code = reap(fork_quiet(body, on_error=4), deadline_s, poll_s=0.01)
    if code is None:
        return "timeout"
    return {0: "survived", 1: "killed"}.get(code, "slow")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    global _current
    if not PATH:
        return None
    sys.settrace(None)
    threading.settrace(None)
    items = list(session.items)
    reached: list[set[int]] = []
    costs: list[float] = []
    for n, item in enumerate(items):
        _current = set()
        sys.settrace(_global)
        threading.settrace(_global)
        started = time.monotonic()
        item.ihook.pytest_runtest_protocol(
            item=item, nextitem=items[n + 1] if n + 1 < len(items) else None
        )
        costs.append(time.monotonic() - started)
        sys.settrace(None)
        threading.settrace(None)
        reached.append(_current)
    _current = None
    if session.testsfailed:
        raise session.Failed("the unmutated module fails its own tests: nothing to measure")
    source = Path(PATH).read_text(encoding="utf-8")
    results: list[dict[str, Any]] = []
    for m in enumerate_mutants(source):
        lines = set(range(m.line, m.end_line + 1))
        chosen = [i for i, hit in zip(items, reached, strict=True) if hit & lines]
        if m.scope is None or m.scope in _import_calls:
            status = "slow"
        elif not chosen:
            status = "uncovered"
        else:
            cost = sum(c for i, c in zip(items, costs, strict=True) if i in chosen)
            status = _try(source, m, chosen, deadline_s=30.0 + 10 * cost)
            if status == "survived":
                status = "slow"  # confirmed (or not) the faithful way before it counts
        found = {**m.__dict__, "status": status, "tests": len(chosen)}
        if status == "slow":  # the fresh-import runner tries these tests first
            found["reach"] = [i.nodeid for i in chosen]
        results.append(found)
    Path(os.environ["MUTATE_OUT"]).write_text(json.dumps(results), encoding="utf-8")
    return True


def iter_code(code: Any) -> Iterator[Any]:
    """Every code object inside ``code`` (functions, lambdas, comprehensions, classes)."""
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from iter_code(const)
