"""The demo's picture of the fleet, built only from what the broker retains.

The demo watches the same retained topics a dashboard would (node status, reported,
desired, app status, fleet summary) and folds each message into a :class:`FleetView`.
Everything here is pure: :meth:`FleetView.apply` takes a parsed topic and payload, and the
questions the demo asks ("is every app healthy?", "what runs where?") are plain functions
of the view, so they are unit-tested without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from edgefleet_protocol import (
    AppStatus,
    Desired,
    FleetSummary,
    NodeStatus,
    ParsedTopic,
    ProtocolError,
    Reported,
    TopicKind,
    decode,
)

T = TypeVar("T")

# Workload states that still hold a process on the gateway.
LIVE_STATES = frozenset({"pending", "pulling", "starting", "running", "unhealthy"})


@dataclass
class FleetView:
    nodes: dict[str, NodeStatus] = field(default_factory=dict)
    reported: dict[str, Reported] = field(default_factory=dict)
    desired: dict[str, Desired] = field(default_factory=dict)
    apps: dict[str, AppStatus] = field(default_factory=dict)
    summary: FleetSummary | None = None
    rejected: int = 0

    def apply(self, topic: ParsedTopic, payload: bytes) -> bool:
        """Fold one message in; ``True`` when the view changed. A bad payload is counted
        and ignored (the demo must not stop on one), an empty one clears the entry."""
        try:
            return self._apply(topic, payload)
        except ProtocolError:
            self.rejected += 1
            return False

    def _apply(self, topic: ParsedTopic, payload: bytes) -> bool:
        node, app = topic.node, topic.app
        match topic.kind:
            case TopicKind.NODE_STATUS if node is not None:
                return _put(self.nodes, node, decode(NodeStatus, payload) if payload else None)
            case TopicKind.NODE_REPORTED if node is not None:
                return _put(self.reported, node, decode(Reported, payload) if payload else None)
            case TopicKind.NODE_DESIRED if node is not None:
                return _put(self.desired, node, decode(Desired, payload) if payload else None)
            case TopicKind.APP_STATUS if app is not None:
                status = decode(AppStatus, payload) if payload else None
                if status is not None and status.state == "deleted":
                    status = None
                return _put(self.apps, app, status)
            case TopicKind.FLEET_SUMMARY:
                summary = decode(FleetSummary, payload) if payload else None
                changed = summary != self.summary
                self.summary = summary
                return changed
        return False


def _put(table: dict[str, T], key: str, value: T | None) -> bool:
    if value is None:
        return table.pop(key, None) is not None
    changed = table.get(key) != value
    table[key] = value
    return changed


# -- questions the demo asks ----------------------------------------------------------------


def online(view: FleetView) -> set[str]:
    return {name for name, status in view.nodes.items() if status.state == "online"}


def app_healthy(view: FleetView, app: str, *, replicas: int | None = None) -> bool:
    """Healthy, every desired replica running (and ``replicas`` of them, when given)."""
    status = view.apps.get(app)
    if status is None or status.state != "healthy" or status.running != status.desired:
        return False
    return replicas is None or status.desired == replicas


def all_healthy(view: FleetView, apps: Iterable[str]) -> bool:
    return all(app_healthy(view, app) for app in apps)


def running_on(view: FleetView, node: str) -> set[str]:
    """Workloads the node itself reports as holding a process."""
    reported = view.reported.get(node)
    if reported is None:
        return set()
    return {name for name, w in reported.workloads.items() if w.state in LIVE_STATES}


def desired_on(view: FleetView, node: str) -> set[str]:
    doc = view.desired.get(node)
    return {w.name for w in doc.workloads} if doc is not None else set()


def node_converged(view: FleetView, node: str) -> bool:
    """Online, and running exactly what its desired document says (nothing left over)."""
    status = view.nodes.get(node)
    if status is None or status.state != "online":
        return False
    reported = view.reported.get(node)
    doc = view.desired.get(node)
    if reported is None or doc is None or reported.observed_generation < doc.generation:
        return False
    return running_on(view, node) == desired_on(view, node)


def total_workloads(view: FleetView, nodes: Iterable[str]) -> int:
    return sum(len(running_on(view, node)) for node in nodes)


def apps_by_node(view: FleetView) -> dict[str, set[str]]:
    """node -> the apps that have a replica assigned to it (from the app statuses)."""
    hosts: dict[str, set[str]] = {}
    for status in view.apps.values():
        for replica in status.replicas:
            if replica.node is not None:
                hosts.setdefault(replica.node, set()).add(status.app)
    return hosts


def replica_nodes(view: FleetView, app: str) -> dict[str, str]:
    """replica -> node, for one app."""
    status = view.apps.get(app)
    if status is None:
        return {}
    return {r.name: r.node for r in status.replicas if r.node is not None}


def progress_line(view: FleetView, apps: Iterable[str], fleet_size: int) -> str:
    """One line of the live view: nodes online, then running/desired per app."""
    parts = [f"nodes {len(online(view))}/{fleet_size} online"]
    for app in apps:
        status = view.apps.get(app)
        if status is None:
            parts.append(f"{app} -")
            continue
        mark = "ok" if app_healthy(view, app) else status.state
        parts.append(f"{app} {status.running}/{status.desired} {mark}")
    return " | ".join(parts)


def unplaced_reasons(view: FleetView, app: str) -> list[str]:
    status = view.apps.get(app)
    if status is None:
        return []
    return [reason for unplaced in status.unplaced for reason in unplaced.reasons]
