"""The fresh-import half of ``make mutate``, started warm: one mutant per forked child.

Why: a mutant at module or class level (a pydantic field, a default, a constant) is only
seen correctly in a fresh import of the mutated module (mutate/hook.py). A cold child
re-imports the whole project and collects every test file before its first test; on the
shared 2-core VM that is most of a killed mutant's cost. So, per target, a *zygote* is
forked from run.py's warm process and:

1. runs the unmutated tests once the old (cold) way, recording which modules they import
   and what each test costs;
2. imports, once, every one of those modules that does NOT depend on the target: not the
   target, nor anything that imports it, directly or through others (``dependents``, read
   from the import statements). A package whose ``__init__`` depends on the target is
   stood in for by an empty placeholder while its other submodules load, so the real
   ``__init__`` still runs in each child, mutated;
3. forks one child per mutant, which drops the placeholders, installs the mutant, imports
   the target (its packages' ``__init__`` first, as a cold import does) and runs the tests
   with ``-x``, those most likely to fail first: the tests that reach the mutated lines
   (step 1 of the engine), then those that killed earlier mutants, then the cheapest.

The verdict does not change: the child ends up with every module a cold child has, each
imported after the mutant was installed if it could see it; a failure is a kill whichever
test fails first. A warm start that cannot be made faithful (a module that imports a
dependent at run time) falls back to cold children.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from mutate import hook
from mutate.forking import fork_quiet, reap

WARM_ARGS = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
"""The plugins imported before the fork cannot have their asserts rewritten."""


def project_modules(roots: list[Path]) -> dict[str, Path]:
    """Every module of the role folders by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for base in roots:
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts and all(p.isidentifier() for p in parts):
                found.setdefault(".".join(parts), path)
    return found


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The project modules ``name`` imports when it is imported (not inside functions,
    which import at call time, after the mutant is in place). ``from pkg import sub`` of
    a submodule needs only ``pkg.sub``: a package's ``__init__`` is an import only when a
    name defined in it is taken."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                subs = {f"{base}.{alias.name}" for alias in child.names}
                found.update(s for s in subs if s in known)
                if not subs <= set(known):
                    found.add(base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in known and m != name}


def dependents(target: str, known: Mapping[str, Path]) -> set[str]:
    """``target`` and every project module that imports it, directly or through others."""
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    closure = {target}
    grew = True
    while grew:
        grew = False
        for name, deps in graph.items():
            if name not in closure and deps & closure:
                closure.add(name)
                grew = True
    return closure


class _Order:
    """A pytest plugin: run the tests most likely to fail first; record what happened."""

    def __init__(self, rank: Mapping[str, tuple[int, int, float]], out: Path) -> None:
        self.rank, self.out = rank, out
        self.costs: dict[str, float] = {}
        self.failed = ""

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        items.sort(key=lambda i: self.rank.get(i.nodeid, (1, 0, 0.0)))

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.costs[report.nodeid] = self.costs.get(report.nodeid, 0.0) + report.duration
        if report.failed and not self.failed:
            self.failed = report.nodeid
            self.out.write_text(json.dumps({"failed": self.failed}), encoding="utf-8")

    def pytest_sessionfinish(self) -> None:
        modules = [n for n, m in list(sys.modules.items()) if isinstance(m, ModuleType)]
        self.out.write_text(
            json.dumps({"failed": self.failed, "costs": self.costs, "modules": modules}),
            encoding="utf-8",
        )


def _child(work: Path, tests: list[str], plugin: _Order, prepare: Any) -> int:
    """Fork one pytest run (``prepare`` first, in the child); the child's pid."""

    def body() -> int:
        os.chdir(work)
        prepare()
        import pytest

        args = ["-x", "-q", "-p", "no:cacheprovider", *WARM_ARGS, *tests]
        return int(pytest.main(args, plugins=[plugin]))

    return fork_quiet(body, on_error=70)


def wait(pid: int, deadline_s: float) -> str:
    """The verdict of child ``pid``: its exit code read as run.py always has."""
    code = reap(pid, deadline_s)
    if code is None:
        return "timeout"
    if code == 0:
        return "survived"
    return "killed" if code in (1, 2, 3) else f"error {code}"


class Zygote:
    """The per-target warm process (see the module docstring). Lives in a forked child of
    run.py, so nothing it imports leaks into the next target."""

    def __init__(self, work: Path, roots: list[Path], module: str, tests: list[str]) -> None:
        self.work, self.module, self.tests = work, module, tests
        self.path = work / module
        self.target = hook.module_name(Path(module))
        self.known = project_modules(roots)
        self.tainted = dependents(self.target, self.known)
        self.placeholders: dict[str, ModuleType] = {}
        self.costs: dict[str, float] = {}
        self.kills: dict[str, int] = {}
        self.order: list[str] = []
        """The dependents the cold run imported (packages and the target), in its order."""
        self.scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"mutate-{os.getpid()}.json"

    def run(self, index: int | None, reach: list[str], deadline_s: float) -> str:
        rank = {
            n: (0 if n in reach else 1, -self.kills.get(n, 0), self.costs.get(n, 0.0))
            for n in self.costs
        }
        plugin = _Order(rank, self.scratch)
        self.scratch.unlink(missing_ok=True)
        pid = _child(self.work, self.tests, plugin, lambda: self._prepare(index))
        status = wait(pid, deadline_s)
        if self.scratch.exists():
            failed = json.loads(self.scratch.read_text(encoding="utf-8")).get("failed")
            if failed:
                self.kills[failed] = self.kills.get(failed, 0) + 1
        return status

    def cold_baseline(self) -> str:
        """The unmutated tests, cold (as the old runner ran every mutant): what they import
        and what each test costs. Bytecode is cached from here on (``PYTHONDONTWRITEBYTECODE``
        would have every child compile every module and rewrite every test's asserts
        again): the scratch tree is private, and the mutant is never cached (mutate/hook.py
        compiles it from its tree)."""
        sys.dont_write_bytecode = False
        plugin = _Order({}, self.scratch)
        pid = _child(self.work, self.tests, plugin, lambda: sys.path.__setitem__(
            slice(0, 0), [str(r) for r in self._roots()]))  # fmt: skip
        status = wait(pid, 600.0)
        if status == "survived":
            seen = json.loads(self.scratch.read_text(encoding="utf-8"))
            self.costs = seen["costs"]
            self.modules = [n for n in seen["modules"] if n not in sys.modules]
        return status

    def _roots(self) -> list[Path]:
        return [self.work / r for r in ("protocol", "orchestrator", "edge-agent", "cli")] + [
            self.work
        ]

    def warm_up(self) -> str:
        """Import what does not depend on the target; '' when done, else why not."""
        sys.path[:0] = [str(r) for r in self._roots()]
        tests_dir = str(self.work / "tests")
        for name in self.tainted:
            path = self.known[name]
            if path.name == "__init__.py" and name != self.target:
                spec = importlib.util.spec_from_file_location(
                    name, path, submodule_search_locations=[str(path.parent)]
                )
                assert spec is not None
                self.placeholders[name] = importlib.util.module_from_spec(spec)
        sys.modules.update(self.placeholders)
        for name in self.modules:
            top = name.partition(".")[0]
            if name in self.tainted or top in ("tests", "conftest", "__main__"):
                if name in self.tainted and name not in self.order:
                    self.order.append(name)
                continue
            file = getattr(sys.modules.get(name), "__file__", None) or ""
            if file.startswith(tests_dir):
                continue
            try:
                importlib.import_module(name)
            except Exception:  # only its importer can load it: the tests will, as cold
                continue
        for name in self.tainted:
            if sys.modules.get(name, self.placeholders.get(name)) is not self.placeholders.get(
                name
            ):
                return f"{name} (depends on the target) was imported during the warm-up"
        if self.target not in self.order:
            self.order.append(self.target)
        return ""

    def _prepare(self, index: int | None) -> None:
        """In the child: the mutant in, the placeholders out, the target's chain imported."""
        for name in self.placeholders:
            del sys.modules[name]
        if index is not None:
            hook.install(Path(self.module), index)
        for name in [*(n for n in self.order if n in self.placeholders), self.target]:
            try:
                importlib.import_module(name)
            except Exception:  # the tests' own import fails the same way
                continue
        for name in self.modules:  # a fresh import binds each submodule on its package
            parent, _, leaf = name.rpartition(".")
            package = sys.modules.get(parent) if parent in self.placeholders else None
            if package is not None and name in sys.modules and not hasattr(package, leaf):
                setattr(package, leaf, sys.modules[name])
