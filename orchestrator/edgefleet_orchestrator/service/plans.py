"""The ``plan`` command: what a ``deploy`` of this manifest would do, changing nothing.

Called by the command intake (:mod:`edgefleet_orchestrator.service.commands`) in place of
:func:`~edgefleet_orchestrator.service.handlers.handle`. A plan passes the deploy's own
checks in the deploy's order (:func:`~edgefleet_orchestrator.service.handlers.admit_deploy`,
then the size check when something would change), so it is refused exactly as that deploy
would be; then it only reads: the field-level changes against the stored manifest, the
revision and rollout the deploy would record, and a trial pass for where the replicas would
go. It never writes the app, a revision or a rollout, never marks the fleet dirty, and the
intake publishes nothing for it but its reply and its audit event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgefleet_protocol.commands import PlanArgs
from edgefleet_protocol.manifest import AppManifest, field_changes
from pydantic import BaseModel

from edgefleet_orchestrator.reconcile.preview import placement_preview
from edgefleet_orchestrator.service.handlers import Outcome, admit_deploy, refuse_oversized
from edgefleet_orchestrator.service.revisions import current_revision
from edgefleet_orchestrator.service.sizes import trial_view
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store


def handle_plan(verb: str, args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """``plan``'s result: ``{app, action, changes, revision, from_revision, rollout,
    desired, replicas, unplaced}`` (docs/protocol.md, "Plans")."""
    assert isinstance(args, PlanArgs)
    previous, app = admit_deploy(args, state)
    if previous != app:
        refuse_oversized(app, state)
    action = "create" if previous is None else ("unchanged" if previous == app else "update")
    before = previous.model_dump(mode="json", exclude_none=True) if previous else None
    result: dict[str, Any] = {
        "app": app.name,
        "action": action,
        "changes": field_changes(before, app.model_dump(mode="json", exclude_none=True)),
        **_revision(previous, app, state, store),
    }
    view = replace(trial_view(state), rollouts=dict(state.rollouts))
    result.update(placement_preview(app, view))
    return Outcome(result)


def _revision(
    previous: AppManifest | None, app: AppManifest, state: ControlState, store: Store
) -> dict[str, Any]:
    """The revision the deploy would record and the rollout phase it would start in, as
    :func:`~edgefleet_orchestrator.service.revisions.record_deploy` would (numbers are
    never reused: the next is one past the newest kept, or two when the running spec of
    an app from before revisions would be recorded first)."""
    kept = store.revisions(app.name)
    current = current_revision(state.rollouts.get(app.name), kept)
    if previous is not None and previous.workload == app.workload:
        return {"revision": None, "from_revision": current, "rollout": None}
    newest = kept[-1].revision if kept else 0
    legacy = previous is not None and not kept
    revision = newest + (2 if legacy else 1)
    if previous is None:
        return {"revision": revision, "from_revision": None, "rollout": None}
    canary = app.update_strategy.canary not in (0, "0%")
    old = state.rollouts.get(app.name)
    if old is not None and old.splits:  # superseded: it starts from the old start spec
        current = old.from_revision
    return {
        "revision": revision,
        "from_revision": newest + 1 if legacy else current,
        "rollout": "canary" if canary else "progressing",
    }


PLAN_VERBS = {"plan": handle_plan}
