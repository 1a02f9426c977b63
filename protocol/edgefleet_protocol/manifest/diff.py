"""Field-level differences between two manifests, as the ``plan`` command reports them.

Pure. Who calls it: the orchestrator's ``plan`` handler (the stored manifest against the
one a deploy would store, both as their JSON dumps without unset fields) and any client
that wants to show the same thing offline. Why field by field: an operator reviewing a
change reads ``workload.env.LEVEL: "1" -> "2"``, not two whole documents.

Objects are compared key by key, down to the leaves (an added or removed object too);
anything else (a list, a number, a
string) is one value, so a changed ``command`` list is one change of the whole list: its
items have no names to report them by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MISSING: Any = object()


def field_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every leaf that differs, in path order: ``{path, from?, to?}`` (``from`` absent when
    the field is added, ``to`` absent when it is removed). ``old`` ``None``: all is added."""
    found: list[dict[str, Any]] = []
    _walk("", dict(old or {}), dict(new), found)
    return sorted(found, key=lambda change: str(change["path"]))


def _walk(path: str, old: Any, new: Any, found: list[dict[str, Any]]) -> None:
    # An added or removed object is reported leaf by leaf too (unless it is empty: then
    # it has no leaves, and is reported whole).
    if old is MISSING and isinstance(new, Mapping) and new:
        old = {}
    if new is MISSING and isinstance(old, Mapping) and old:
        new = {}
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            here = f"{path}.{key}" if path else str(key)
            _walk(here, old.get(key, MISSING), new.get(key, MISSING), found)
        return
    if old is MISSING and new is MISSING:
        return
    if old is not MISSING and new is not MISSING and old == new and type(old) is type(new):
        return
    change: dict[str, Any] = {"path": path}
    if old is not MISSING:
        change["from"] = old
    if new is not MISSING:
        change["to"] = new
    found.append(change)


__all__ = ["field_changes"]
