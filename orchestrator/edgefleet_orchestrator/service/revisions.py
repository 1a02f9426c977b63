"""Revisions and rollout starts, for the ``deploy`` and ``rollout-undo`` handlers.

A deploy that changes an app's workload spec records a new revision (the store keeps the
last ten) and starts a rollout from the spec the replicas ran (or, superseding a rollout in
progress, from that rollout's start spec: see docs/operations.md). A deploy that changes
only other fields (replicas, placement, ...) records nothing and applies at once.
"""

from __future__ import annotations

from typing import Any

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.rollout.state import RolloutState, start_rollout, to_json
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import RevisionRecord, Store


def _text(app: AppManifest) -> str:
    return app.model_dump_json(exclude_none=True)


def current_revision(rollout: RolloutState | None, kept: list[RevisionRecord]) -> int | None:
    """The revision whose workload the app's manifest holds now."""
    if rollout is not None:
        return rollout.from_revision if rollout.phase == "reverted" else rollout.revision
    return kept[-1].revision if kept else None


def record_deploy(
    previous: AppManifest | None,
    app: AppManifest,
    state: ControlState,
    store: Store,
    *,
    note: str = "",
) -> dict[str, Any]:
    """After ``app`` was stored: a revision (and a rollout) if its workload changed; the
    fields to add to the deploy's reply."""
    if previous is not None and previous.workload == app.workload:
        return {}
    name = app.name
    kept = store.revisions(name)
    if previous is not None and not kept:
        # An app deployed before revisions were kept: its running spec becomes revision 1,
        # so undo has somewhere to go.
        store.put_revision(name, _text(previous), "running when revisions started")
        kept = store.revisions(name)
    old = state.rollouts.get(name)
    from_revision = current_revision(old, kept)
    revision = store.put_revision(name, _text(app), note)
    if previous is None:
        state.rollouts.pop(name, None)
        return {"revision": revision}
    canary = app.update_strategy.canary not in (0, "0%")
    now = state.clock()
    rollout = start_rollout(
        name,
        revision=revision,
        from_revision=from_revision,
        from_workload=previous.workload,
        to_workload=app.workload,
        canary=canary,
        now=now,
        superseded=old if old is not None and old.splits else None,
    )
    if old is not None and old.splits:
        rollout = rollout.with_reason(
            f"supersedes the rollout of revision {old.revision} ({old.phase}); starts from "
            f"revision {rollout.from_revision}",
            now,
        )
    state.rollouts[name] = rollout
    store.put_rollout(name, to_json(rollout))
    return {"revision": revision, "rollout": rollout.phase}
