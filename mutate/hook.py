"""The faithful half of ``make mutate``: import the target module with one mutant applied.

Why: a change that runs at import time (a constant, a pydantic field, a class attribute, a
default) is only seen correctly when the module is imported mutated, before anything else
binds its names. run.py forks a warm process (pytest and the heavy third-party packages
already imported, no edgefleet module yet), installs this finder first on ``sys.meta_path``
and runs the module's tests with ``pytest.main``; nothing is written to disk.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from mutate.mutants import mutated_tree


def module_name(path: Path) -> str:
    """``protocol/edgefleet_protocol/topics.py`` -> ``edgefleet_protocol.topics``: the first
    folder is the role folder the editable install puts on ``sys.path``."""
    parts = list(path.with_suffix("").parts[1:])
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _Mutated(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, name: str, path: Path, index: int) -> None:
        self.name, self.path, self.index = name, path, index

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        is_pkg = self.path.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            self.path,
            loader=self,
            submodule_search_locations=[str(self.path.parent)] if is_pkg else None,
        )

    def exec_module(self, module: ModuleType) -> None:
        source = self.path.read_text(encoding="utf-8")
        code = compile(mutated_tree(source, self.index), str(self.path), "exec")
        exec(code, module.__dict__)


def install(path: Path, index: int) -> None:
    resolved = path.resolve()
    sys.meta_path.insert(0, _Mutated(module_name(path), resolved, index))
