"""What a reconcile pass decided, as sentences for the audit trail.

The pass is pure, so it cannot publish; it returns :class:`Note` values and the service
shell turns each into an event on ``orchestrator/events`` (kind, app, node and details
as given). Every scaling decision is a note: autoscale changes with the observed value,
target and resulting count; resizes; moves started and finished; drain milestones; and
(added by the shell) each rollout step's phase changes and failed replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

NoteKind = Literal["autoscale", "resources", "drain", "rebalance", "move", "rollout"]


def _nothing() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Note:
    kind: NoteKind
    message: str
    level: Literal["info", "warning"] = "info"
    app: str | None = None
    node: str | None = None
    details: Mapping[str, object] = field(default_factory=_nothing)
