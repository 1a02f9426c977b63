"""One reconcile pass: from the full current view to new assignments and desired documents.

Pure and level-triggered (STYLE.md §6): the service hands in everything it knows — apps,
node records, current assignments, what was last published — and gets back the complete
new state plus the documents to publish. It never looks at which event woke it, so a burst
of a thousand events costs one pass, and a missed event costs nothing.

How node loss is decided here: a node that is not online has been gone for
``now - offline_since`` seconds; placement compares that with each app's
``disconnect.grace_s``. A node that holds assignments but is not in the registry at all
(the orchestrator restarted and has not heard of it yet) counts as gone since the
orchestrator started — never since the epoch — so a restart never reshuffles replicas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edgefleet_protocol import spec_hash

from edgefleet_orchestrator.desired import DocumentChange, PlacedWorkload, Published, plan_documents
from edgefleet_orchestrator.manifest import AppManifest
from edgefleet_orchestrator.placement.model import (
    AppPlacement,
    Assignment,
    NodeView,
    node_view_from,
)
from edgefleet_orchestrator.placement.pipeline import place_all
from edgefleet_orchestrator.registry import NodeRecord


@dataclass(frozen=True, slots=True)
class FleetView:
    """Everything a pass needs, as plain values."""

    apps: Mapping[str, AppManifest]
    nodes: Mapping[str, NodeRecord]
    assignments: Sequence[Assignment]
    published: Mapping[str, Published]
    now: float
    started_at: float
    seed: int = 0


@dataclass(frozen=True, slots=True)
class PassResult:
    placements: dict[str, AppPlacement]
    assignments: tuple[Assignment, ...]
    documents: list[DocumentChange]
    events: list[str] = field(default_factory=list)

    def assignments_of(self, app: str) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.app == app)


def node_views(nodes: Mapping[str, NodeRecord]) -> list[NodeView]:
    """Placement's view of every node that has described itself (capabilities)."""
    views = []
    for record in nodes.values():
        if record.capabilities is None:
            continue
        views.append(
            node_view_from(
                record.capabilities,
                ready=record.state == "online",
                cordoned=record.cordoned,
                latency_ms=record.telemetry.latency_ms,
            )
        )
    views.sort(key=lambda v: v.node)
    return views


def offline_durations(view: FleetView) -> dict[str, float]:
    """Seconds each not-online node has been gone (see the module docstring)."""
    gone: dict[str, float] = {}
    for node, record in view.nodes.items():
        if record.state == "online":
            continue
        since = record.offline_since if record.offline_since is not None else view.started_at
        gone[node] = max(0.0, view.now - since)
    for a in view.assignments:
        if a.node not in view.nodes:
            gone[a.node] = max(0.0, view.now - view.started_at)
    return gone


def reconcile(view: FleetView) -> PassResult:
    """Place every app (in name order, each seeing what the previous ones took), drop the
    assignments of deleted apps, and plan the desired documents that changed."""
    nodes = node_views(view.nodes)
    gone = offline_durations(view)
    current = [a for a in view.assignments if a.app in view.apps]
    events = [
        f"app {a.app} was deleted: removing replica {a.replica} from node {a.node}"
        for a in view.assignments
        if a.app not in view.apps
    ]
    placements = place_all(view.apps.values(), nodes, current, seed=view.seed, offline_for_s=gone)
    current = [a for name in sorted(placements) for a in placements[name].assignments]
    for name in sorted(placements):
        events.extend(_describe(placements[name]))
    placed = _placed_workloads(current, view.apps)
    documents = plan_documents(placed, view.published, now=view.now)
    return PassResult(
        placements=placements,
        assignments=tuple(sorted(current, key=lambda a: (a.app, a.replica))),
        documents=documents,
        events=events,
    )


def _placed_workloads(
    assignments: Sequence[Assignment], apps: Mapping[str, AppManifest]
) -> list[PlacedWorkload]:
    hashes = {name: spec_hash(app.workload) for name, app in apps.items()}
    return [
        PlacedWorkload(
            name=a.replica,
            app=a.app,
            node=a.node,
            site=a.site,
            spec=apps[a.app].workload,
            spec_hash=hashes[a.app],
        )
        for a in assignments
    ]


def _describe(result: AppPlacement) -> list[str]:
    if not result.changed:
        return []
    return [f"placement {result}"]
