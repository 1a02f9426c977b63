"""What each operator command does to the orchestrator's state, and what it answers.

Called by the service shell with a parsed command (edgefleet_protocol.commands) and the
live :class:`ControlState`. Handlers change only in-memory state and the store; they never
publish (the shell replies and marks the fleet dirty). A refused command raises
:class:`CommandFailed` with a code from the closed :class:`ErrorCode` set and changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from edgefleet_protocol import ProtocolError
from edgefleet_protocol.commands import (
    AppArgs,
    AuditArgs,
    DeployArgs,
    DrainArgs,
    ErrorCode,
    NoArgs,
    NodeArgs,
    ScaleArgs,
)
from edgefleet_protocol.manifest import AppManifest, load_manifest, with_replicas
from pydantic import BaseModel

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.scaling.drain import DrainRequest
from edgefleet_orchestrator.security.admission import admission_violations
from edgefleet_orchestrator.service.revisions import record_deploy
from edgefleet_orchestrator.service.sizes import oversize_refusal
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store
from edgefleet_orchestrator.store.control import drain_record


class CommandFailed(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Any
    placement_changed: bool = False


def manifest_json(app: AppManifest) -> str:
    return app.model_dump_json(exclude_none=True)


def handle(verb: str, args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """Run one validated command. Raises :class:`CommandFailed` when it is refused."""
    handler = _HANDLERS.get(verb)
    if handler is None:  # parse_command already refuses unknown verbs; belt and braces
        raise CommandFailed(ErrorCode.UNKNOWN_VERB, f"unknown command {verb!r}")
    return handler(args, state, store)


def admit_deploy(args: DeployArgs, state: ControlState) -> tuple[AppManifest | None, AppManifest]:
    """The checks a deploy passes before anything is stored, in order (manifest, service
    name, compliance policy), and the manifest it would store: ``(previous, app)``. Shared
    by ``deploy`` and ``plan``, so a plan refuses exactly what the deploy would."""
    try:
        app = load_manifest(json.dumps(args.manifest), source="manifest")
    except ProtocolError as exc:
        raise CommandFailed(
            ErrorCode.BAD_REQUEST,
            f"invalid manifest: {exc.field}: {exc.reason}",
            {"field": f"manifest.{exc.field}", "reason": exc.reason},
        ) from None
    _refuse_service_clash(app, state)
    if state.policy is not None:
        broken = admission_violations(app, state.policy, args.manifest)
        if broken:
            raise CommandFailed(
                ErrorCode.POLICY_VIOLATION,
                f"app {app.name} breaks {len(broken)} compliance rule(s): {'; '.join(broken)}"[
                    :4000
                ],
                {"app": app.name, "violations": broken},
            )
    previous = state.apps.get(app.name)
    if previous is not None and app.autoscale is not None and "replicas" not in args.manifest:
        # The count of an autoscaled app is the autoscaler's: a redeploy that does not name
        # one keeps the current count (within the new bounds) instead of resetting to min.
        low, high = app.autoscale.min, app.autoscale.max
        app = with_replicas(app, min(max(previous.replicas or low, low), high))
    return previous, app


def _deploy(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, DeployArgs)
    previous, app = admit_deploy(args, state)
    if previous == app:
        version = store.put_app(app.name, manifest_json(app))
        return Outcome({"app": app.name, "action": "unchanged", "version": version})
    refuse_oversized(app, state)
    version = store.put_app(app.name, manifest_json(app))
    state.apps[app.name] = app
    action = "created" if previous is None else "updated"
    revised = record_deploy(previous, app, state, store)
    return Outcome({"app": app.name, "action": action, "version": version, **revised}, True)


def _refuse_service_clash(app: AppManifest, state: ControlState) -> None:
    """One service name, one app: a second claim would mix two apps' replicas in one
    endpoint list, so it is refused and nothing changes."""
    wanted = app.service_name
    if wanted is None:
        return
    for other in state.apps.values():
        if other.name != app.name and other.service_name == wanted:
            raise CommandFailed(
                ErrorCode.CONFLICT,
                f"service {wanted} is already offered by app {other.name}; give this app's "
                "service another name (service.name) or delete that app first",
                {"field": "manifest.service.name", "service": wanted, "app": other.name},
            )


def refuse_oversized(app: AppManifest, state: ControlState) -> None:
    refusal = oversize_refusal(app, state)
    if refusal is not None:
        raise CommandFailed(ErrorCode.TOO_LARGE, *refusal)


def _delete(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    _require_app(args.app, state)
    store.delete_app(args.app)
    del state.apps[args.app]
    state.rollouts.pop(args.app, None)
    return Outcome({"app": args.app, "action": "deleted"}, True)


def _scale(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, ScaleArgs)
    app = _require_app(args.app, state)
    if app.is_daemon:
        raise CommandFailed(
            ErrorCode.CONFLICT,
            f"app {app.name} runs in daemon mode (one replica per matching node); "
            "change its placement instead of scaling it",
            {"app": app.name, "mode": "daemon"},
        )
    if app.autoscale is not None:
        auto = app.autoscale
        raise CommandFailed(
            ErrorCode.CONFLICT,
            f"app {app.name} is autoscaled on {auto.metric} between {auto.min} and "
            f"{auto.max} replicas; deploy it with other autoscale bounds (or without "
            "autoscale) to set its count",
            {"app": app.name, "autoscale": auto.model_dump(mode="json")},
        )
    previous = app.replicas or 0
    try:
        scaled = AppManifest.model_validate(
            {**app.model_dump(exclude_none=True), "replicas": args.replicas}
        )
    except ValueError as exc:
        raise CommandFailed(ErrorCode.BAD_REQUEST, str(exc), {"field": "replicas"}) from None
    if args.replicas > previous:
        refuse_oversized(scaled, state)
    store.put_app(app.name, manifest_json(scaled))
    state.apps[app.name] = scaled
    return Outcome(
        {"app": app.name, "replicas": args.replicas, "previous": previous},
        args.replicas != previous,
    )


def _apps(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, NoArgs)
    rows = []
    for name in sorted(state.apps):
        app = state.apps[name]
        status = state.statuses.get(name)
        rows.append(
            {
                "app": name,
                "mode": app.mode,
                "state": status.state if status else "progressing",
                "desired": status.desired if status else (app.replicas or 0),
                "placed": status.placed if status else 0,
                "running": status.running if status else 0,
                "runtime": app.workload.runtime,
                "labels": dict(app.labels),
            }
        )
    return Outcome({"apps": rows})


def _app(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, AppArgs)
    app = _require_app(args.app, state)
    status = state.statuses.get(app.name)
    return Outcome(
        {
            "app": app.name,
            "manifest": app.model_dump(mode="json", exclude_none=True),
            "status": status.model_dump(mode="json", exclude_none=True) if status else None,
        }
    )


def node_row(record: NodeRecord, assignments: list[Assignment]) -> dict[str, Any]:
    caps = record.capabilities
    return {
        "node": record.node,
        "site": record.site,
        "state": record.state,
        "cordoned": record.cordoned,
        "flapping": record.flapping,
        "session": record.session,
        "profile": caps.profile if caps else None,
        "arch": caps.arch if caps else None,
        "cpu_pct": record.telemetry.cpu_pct,
        "memory_pct": record.telemetry.memory_pct,
        "replicas": sum(1 for a in assignments if a.node == record.node),
        "region": caps.region if caps else None,
        "labels": dict(caps.labels) if caps else {},
    }


def _drain_state(node: str, state: ControlState) -> str | None:
    if node not in state.control.drains:
        return None
    progress = state.drains.get(node)
    return str(progress["state"]) if progress else "draining"


def _nodes(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, NoArgs)
    records = sorted(state.registry.nodes.values(), key=lambda r: (r.site, r.node))
    rows = []
    for r in records:
        row = node_row(r, state.assignments)
        row["drain"] = _drain_state(r.node, state)
        rows.append(row)
    return Outcome({"nodes": rows})


def _node(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, NodeArgs)
    record = _require_node(args.node, state)
    row = node_row(record, state.assignments)
    row["capabilities"] = (
        record.capabilities.model_dump(mode="json", exclude_none=True)
        if record.capabilities
        else None
    )
    row["telemetry"] = {
        "cpu_pct": record.telemetry.cpu_pct,
        "memory_pct": record.telemetry.memory_pct,
        "disk_pct": record.telemetry.disk_pct,
        "load1": record.telemetry.load1,
        "latency_ms": dict(record.telemetry.latency_ms),
        "metrics": dict(record.telemetry.metrics),
    }
    row["workloads"] = (
        {
            name: w.model_dump(mode="json", exclude_none=True)
            for name, w in record.reported.workloads.items()
        }
        if record.reported
        else {}
    )
    row["assigned"] = sorted(a.replica for a in state.assignments if a.node == record.node)
    row["drain"] = _progress(args.node, state)
    return Outcome(row)


def _cordon(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, NodeArgs)
    return _set_cordon(args.node, True, state, store)


def _uncordon(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    assert isinstance(args, NodeArgs)
    return _set_cordon(args.node, False, state, store)


def _set_cordon(node: str, cordoned: bool, state: ControlState, store: Store) -> Outcome:
    _require_node(node, state)
    store.set_cordon(node, cordoned)
    changed = state.registry.set_cordon(node, cordoned)
    result: dict[str, Any] = {"node": node, "cordoned": cordoned, "changed": changed}
    if not cordoned and node in state.control.drains:
        # Uncordon ends a drain: moves under way finish, nothing new is moved.
        store.delete_drain(node)
        drains = {n: d for n, d in state.control.drains.items() if n != node}
        state.control = replace(state.control, drains=drains)
        state.drains.pop(node, None)
        result["drain_cancelled"] = True
        changed = True
    return Outcome(result, changed)


def _drain(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """Cordon the node and move its replicas away (the passes do the moving; see drain.py).
    A repeat while draining is answered with the progress so far (``action:
    unchanged``), or ``updated`` when it changes ``max_unavailable``."""
    assert isinstance(args, DrainArgs)
    _require_node(args.node, state)
    existing = state.control.drains.get(args.node)
    if existing is not None and existing.max_unavailable == args.max_unavailable:
        return Outcome({"node": args.node, "action": "unchanged", **_progress_of(args.node, state)})
    request = DrainRequest(
        node=args.node,
        started_at=existing.started_at if existing else state.clock(),
        max_unavailable=args.max_unavailable,
    )
    store.set_cordon(args.node, True)
    state.registry.set_cordon(args.node, True)
    store.put_drain(drain_record(request))
    state.control = replace(state.control, drains={**state.control.drains, args.node: request})
    action = "started" if existing is None else "updated"
    return Outcome({"node": args.node, "action": action, **_progress_of(args.node, state)}, True)


def _progress(node: str, state: ControlState) -> dict[str, Any] | None:
    """The node's drain progress, or ``None`` when it is not draining."""
    return _progress_of(node, state) if node in state.control.drains else None


def _progress_of(node: str, state: ControlState) -> dict[str, Any]:
    known = state.drains.get(node)
    if known is not None:
        return dict(known)
    # Not through a pass yet: what is there to move, as far as the assignments say.
    request = state.control.drains[node]
    daemon = {name for name, app in state.apps.items() if app.is_daemon}
    here = [a for a in state.assignments if a.node == node]
    return {
        "node": node,
        "state": "draining",
        "started_at": request.started_at,
        "max_unavailable": request.max_unavailable,
        "remaining": sum(1 for a in here if a.app not in daemon),
        "moving": [],
        "waiting": [],
        "stuck": [],
        "daemons": sorted(a.replica for a in here if a.app in daemon),
    }


def _require_app(name: str, state: ControlState) -> AppManifest:
    app = state.apps.get(name)
    if app is None:
        raise CommandFailed(
            ErrorCode.NOT_FOUND, f"no app named {name!r}", {"app": name, "apps": sorted(state.apps)}
        )
    return app


def _require_node(name: str, state: ControlState) -> NodeRecord:
    record = state.registry.nodes.get(name)
    if record is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, f"no node named {name!r}", {"node": name})
    return record


def _audit(args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """The newest audit entries (the intake narrows them to the caller's own unless it is
    an admin: :func:`edgefleet_orchestrator.access.roles.visible`)."""
    assert isinstance(args, AuditArgs)
    entries = store.audit_entries(limit=args.limit, operator=args.operator)
    return Outcome({"entries": [e.as_details() for e in entries]})


_HANDLERS: dict[str, Callable[[BaseModel, ControlState, Store], Outcome]] = {
    "deploy": _deploy,
    "delete": _delete,
    "scale": _scale,
    "apps": _apps,
    "app": _app,
    "nodes": _nodes,
    "node": _node,
    "cordon": _cordon,
    "uncordon": _uncordon,
    "drain": _drain,
    "audit": _audit,
}
