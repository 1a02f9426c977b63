"""The audit-trail notes of a reconcile pass: resizes, moves started and moves finished.

Pure; called by :func:`~.fleet_pass.reconcile` (the shell publishes them on
``orchestrator/events``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgefleet_orchestrator.fleet.notes import Note
from edgefleet_orchestrator.placement.model import Rejection
from edgefleet_orchestrator.scaling.moves import Finished, Retiring
from edgefleet_orchestrator.scaling.vertical import Resize


def resize_note(r: Resize) -> Note:
    return Note(
        kind="resources",
        app=r.app,
        node=r.node,
        message=f"resources {r.replica} on {r.node}: {r.reason}",
        details={
            "replica": r.replica,
            "cpu": [r.before.cpu, r.after.cpu],
            "memory_mb": [r.before.memory_mb, r.after.memory_mb],
        },
    )


def move_notes(
    started: Sequence[Retiring], leaving: Mapping[str, Mapping[str, Rejection]]
) -> list[Note]:
    notes = []
    for r in started:
        why = leaving.get(r.app, {}).get(r.replica)
        if r.cause == "rollout":
            message = (
                f"updating {r.replica} make-before-break: its new copy starts on {r.to_node}, "
                f"the old one runs on {r.node} until the new one is healthy"
            )
        else:
            message = (
                f"moving {r.replica} from {r.node} to {r.to_node} (make-before-break: the old "
                f"copy runs until the new one does){': ' + why.reason if why else ''}"
            )
        notes.append(
            Note(
                kind=r.cause,
                app=r.app,
                node=r.node,
                message=message,
                details={"replica": r.replica, "from": r.node, "to": r.to_node},
            )
        )
    return notes


def finished_note(f: Finished) -> Note:
    r = f.retiring
    return Note(
        kind="move",
        app=r.app,
        node=r.node,
        message=f"{r.cause} move of {r.replica}: {f.reason}",
        details={
            "replica": r.replica,
            "from": r.node,
            "to": r.to_node,
            "completed": f.completed,
            "cause": r.cause,
        },
    )
