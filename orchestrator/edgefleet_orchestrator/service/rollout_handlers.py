"""The ``rollout-*`` operator verbs: status, history, promote, pause, resume, undo.

Same contract as :mod:`.handlers`: change only in-memory state and the store, raise
:class:`~edgefleet_orchestrator.service.handlers.CommandFailed` (and change nothing) when
refused. A refusal lists what exists: the apps with a rollout, or the revisions kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from edgefleet_protocol import ProtocolError, validate
from edgefleet_protocol.commands import AppArgs, ErrorCode, UndoArgs
from edgefleet_protocol.manifest import AppManifest
from edgefleet_protocol.rollout import RolloutPhase
from pydantic import BaseModel

from edgefleet_orchestrator.rollout.machine import revert, set_phase
from edgefleet_orchestrator.rollout.state import RolloutState, status_of, to_json
from edgefleet_orchestrator.rollout.view import rollout_view
from edgefleet_orchestrator.service.handlers import CommandFailed, Outcome, manifest_json
from edgefleet_orchestrator.service.revisions import current_revision, record_deploy
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import RevisionRecord, Store


def handle_rollout(verb: str, args: BaseModel, state: ControlState, store: Store) -> Outcome:
    return _HANDLERS[verb](args, state, store)


def rollout_status(state: ControlState, app: str) -> dict[str, Any] | None:
    """The rollout's status payload as JSON data, or ``None`` without one."""
    rollout = state.rollouts.get(app)
    manifest = state.apps.get(app)
    if rollout is None or manifest is None:
        return None
    mine = [a for a in state.assignments if a.app == app]
    built = rollout_view(manifest, rollout, mine, state.registry.nodes)
    status = status_of(rollout, total=len(built.view.replicas), updated=built.updated)
    return status.model_dump(mode="json", exclude_none=True)


def _status(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    _app(args.app, state)
    kept = store.revisions(args.app)
    return Outcome(
        {
            "app": args.app,
            "current_revision": current_revision(state.rollouts.get(args.app), kept),
            "rollout": rollout_status(state, args.app),
        }
    )


def _history(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    _app(args.app, state)
    kept = store.revisions(args.app)
    current = current_revision(state.rollouts.get(args.app), kept)
    rows = [_row(r, current) for r in kept]
    return Outcome({"app": args.app, "current_revision": current, "revisions": rows})


def _row(r: RevisionRecord, current: int | None) -> dict[str, Any]:
    workload = json.loads(r.manifest_json).get("workload", {})
    return {
        "revision": r.revision,
        "current": r.revision == current,
        "created_at": r.created_at,
        "note": r.note,
        "image": workload.get("image"),
        "command": workload.get("command"),
    }


def _promote(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    rollout = _rollout(args.app, state)
    _require_phase(rollout, ("canary", "awaiting-promotion"), "promote")
    return _save(set_phase(rollout, "progressing", "promoted by an operator", state.clock()),
                 state, store)  # fmt: skip


def _pause(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    rollout = _rollout(args.app, state)
    _require_phase(rollout, ("canary", "awaiting-promotion", "progressing"), "pause")
    return _save(set_phase(rollout, "paused", "paused by an operator", state.clock()),
                 state, store)  # fmt: skip


def _resume(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    rollout = _rollout(args.app, state)
    _require_phase(rollout, ("paused",), "resume")
    back: RolloutPhase = rollout.paused_from or "progressing"
    return _save(set_phase(rollout, back, "resumed by an operator", state.clock()), state, store)


def _undo(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """In a rollout that still splits the app, no ``to_revision`` (or its start revision)
    reverts it. Otherwise the workload of ``to_revision`` (default: the one before the
    current) is deployed again as a new revision, rolling out like any deploy."""
    assert isinstance(args, UndoArgs)
    app = _app(args.app, state)
    rollout = state.rollouts.get(args.app)
    kept = store.revisions(args.app)
    in_progress = rollout is not None and rollout.splits and rollout.phase != "reverting"
    if rollout is not None and in_progress and args.to_revision in (None, rollout.from_revision):
        reverted = revert(rollout, "undo by an operator", state.clock())
        _restore(app, reverted, state, store)
        return _save(reverted, state, store)
    current = current_revision(rollout, kept)
    target = args.to_revision
    if target is None:
        older = [r.revision for r in kept if current is None or r.revision < current]
        if not older:
            raise CommandFailed(
                ErrorCode.NOT_FOUND,
                f"app {args.app} has no revision before {current} to go back to; kept: "
                f"{_listing(kept)}",
                {"app": args.app, "revisions": [r.revision for r in kept]},
            )
        target = older[-1]
    record = next((r for r in kept if r.revision == target), None)
    if record is None:
        raise CommandFailed(
            ErrorCode.NOT_FOUND,
            f"app {args.app} has no revision {target} (the last 10 are kept): {_listing(kept)}",
            {"app": args.app, "revision": target, "revisions": [r.revision for r in kept]},
        )
    if target == current:
        raise CommandFailed(
            ErrorCode.CONFLICT,
            f"app {args.app} already runs revision {target}; kept: {_listing(kept)}",
            {"app": args.app, "revision": target, "revisions": [r.revision for r in kept]},
        )
    old_workload = json.loads(record.manifest_json)["workload"]
    try:
        wanted = validate(AppManifest, {**app.model_dump(mode="json", exclude_none=True),
                                        "workload": old_workload})  # fmt: skip
    except ProtocolError as exc:
        raise CommandFailed(ErrorCode.CONFLICT, f"revision {target} no longer validates: {exc}",
                            {"app": args.app, "revision": target}) from None  # fmt: skip
    version = store.put_app(args.app, manifest_json(wanted))
    state.apps[args.app] = wanted
    revised = record_deploy(app, wanted, state, store, note=f"undo to revision {target}")
    return Outcome({"app": args.app, "action": "updated", "version": version, **revised,
                    "to_revision": target}, True)  # fmt: skip


def _restore(app: AppManifest, rollout: RolloutState, state: ControlState, store: Store) -> None:
    restored = restore_manifest(app, rollout)
    store.put_app(app.name, manifest_json(restored))
    state.apps[app.name] = restored


def restore_manifest(app: AppManifest, rollout: RolloutState) -> AppManifest:
    """``app`` with the workload its rollout started from (a revert keeps the replica
    count, placement and every other field as they are now)."""
    return app.model_copy(update={"workload": rollout.from_workload})


def _save(rollout: RolloutState, state: ControlState, store: Store) -> Outcome:
    state.rollouts[rollout.app] = rollout
    store.put_rollout(rollout.app, to_json(rollout))
    return Outcome({"app": rollout.app, "rollout": rollout_status(state, rollout.app)}, True)


def _listing(kept: list[RevisionRecord]) -> str:
    return ", ".join(str(r.revision) for r in kept) or "none"


def _app(name: str, state: ControlState) -> AppManifest:
    app = state.apps.get(name)
    if app is None:
        raise CommandFailed(
            ErrorCode.NOT_FOUND, f"no app named {name!r}", {"app": name, "apps": sorted(state.apps)}
        )
    return app


def _rollout(name: str, state: ControlState) -> RolloutState:
    _app(name, state)
    rollout = state.rollouts.get(name)
    if rollout is None:
        active = sorted(a for a, r in state.rollouts.items() if r.active)
        raise CommandFailed(
            ErrorCode.NOT_FOUND,
            f"app {name} has no rollout; apps with a rollout in progress: "
            f"{', '.join(active) or 'none'}",
            {"app": name, "rollouts": active},
        )
    return rollout


def _require_phase(rollout: RolloutState, phases: tuple[str, ...], verb: str) -> None:
    if rollout.phase not in phases:
        raise CommandFailed(
            ErrorCode.CONFLICT,
            f"the rollout of {rollout.app} revision {rollout.revision} is {rollout.phase}; "
            f"{verb} applies only in {' or '.join(phases)}",
            {"app": rollout.app, "revision": rollout.revision, "phase": rollout.phase},
        )


_HANDLERS: dict[str, Callable[[BaseModel, ControlState, Store], Outcome]] = {
    "rollout-status": _status,
    "rollout-history": _history,
    "rollout-promote": _promote,
    "rollout-pause": _pause,
    "rollout-resume": _resume,
    "rollout-undo": _undo,
}
