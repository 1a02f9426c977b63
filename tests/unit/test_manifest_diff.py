"""``field_changes``: the field-level differences a ``plan`` reports, as a table."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_protocol.manifest import field_changes

CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any], list[dict[str, Any]]]] = [
    ("nothing changed", {"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 2]}}, []),
    ("a leaf changed", {"a": {"b": 1}}, {"a": {"b": 2}}, [{"path": "a.b", "from": 1, "to": 2}]),
    ("a leaf added", {"a": {}}, {"a": {"b": 1}}, [{"path": "a.b", "to": 1}]),
    ("a leaf removed", {"a": {"b": 1}}, {"a": {}}, [{"path": "a.b", "from": 1}]),
    ("an object added is reported leaf by leaf", {}, {"a": {"b": 1, "c": {"d": 2}}},
     [{"path": "a.b", "to": 1}, {"path": "a.c.d", "to": 2}]),
    ("an object removed is reported leaf by leaf", {"a": {"b": 1}}, {},
     [{"path": "a.b", "from": 1}]),
    ("an empty object added is one change", {}, {"a": {}}, [{"path": "a", "to": {}}]),
    ("a list is one value", {"c": ["x", "y"]}, {"c": ["x", "z"]},
     [{"path": "c", "from": ["x", "y"], "to": ["x", "z"]}]),
    ("1 and 1.0 and true differ in type", {"a": 1, "b": 1}, {"a": 1.0, "b": True},
     [{"path": "a", "from": 1, "to": 1.0}, {"path": "b", "from": 1, "to": True}]),
    ("no previous manifest: everything is added", None, {"name": "x", "w": {"r": "p"}},
     [{"path": "name", "to": "x"}, {"path": "w.r", "to": "p"}]),
    ("an object replaced by a value", {"a": {"b": 1}}, {"a": 3},
     [{"path": "a", "from": {"b": 1}, "to": 3}]),
    ("paths come sorted", {"z": 1, "a": 1}, {"z": 2, "a": 2},
     [{"path": "a", "from": 1, "to": 2}, {"path": "z", "from": 1, "to": 2}]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "old", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_field_changes(
    name: str, old: dict[str, Any] | None, new: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    assert field_changes(old, new) == expected


def test_a_field_set_to_null_differs_from_a_missing_one() -> None:
    assert field_changes({"a": None}, {}) == [{"path": "a", "from": None}]
    assert field_changes({}, {"a": None}) == [{"path": "a", "to": None}]
