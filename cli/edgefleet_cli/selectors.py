"""Label selectors for ``edgefleet nodes -l`` and ``apps -l``, as kubectl writes them.

Pure: ``parse_selector("role=sensor,zone!=b,gpu")`` gives the requirements, ``matches``
tests a row's ``labels`` against all of them (``key=value``, ``key!=value``, ``key``:
present, ``!key``: absent). The orchestrator returns every row; the CLI filters, so any
MQTT client can select the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")


class SelectorError(ValueError):
    """A selector that cannot be read; the message names the part."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: Literal["=", "!=", "exists", "absent"]
    value: str = ""

    def holds(self, labels: Mapping[str, str]) -> bool:
        match self.op:
            case "=":
                return labels.get(self.key) == self.value
            case "!=":
                return labels.get(self.key) != self.value
            case "exists":
                return self.key in labels
            case "absent":
                return self.key not in labels


def parse_selector(text: str) -> tuple[Requirement, ...]:
    requirements = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise SelectorError(f"empty requirement in {text!r}")
        if "!=" in part:
            key, value = part.split("!=", 1)
            op: Literal["=", "!=", "exists", "absent"] = "!="
        elif "=" in part:
            key, value = part.split("=", 1)
            key, value, op = key.rstrip("="), value.lstrip("="), "="  # k==v as k=v
        elif part.startswith("!"):
            key, value, op = part[1:], "", "absent"
        else:
            key, value, op = part, "", "exists"
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise SelectorError(f"{key!r} in {part!r} is not a label key")
        requirements.append(Requirement(key, op, value.strip()))
    return tuple(requirements)


def matches(labels: Mapping[str, str] | None, requirements: tuple[Requirement, ...]) -> bool:
    return all(r.holds(labels or {}) for r in requirements)
