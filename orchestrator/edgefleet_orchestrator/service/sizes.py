"""The ``too_large`` refusal of ``deploy`` and ``scale``: the live state's trial pass, sized.

Called by :mod:`edgefleet_orchestrator.service.handlers` before a change is stored; the
sizing itself is the pure :mod:`edgefleet_orchestrator.reconcile.sizes`. A change whose
trial pass gives some node a desired document the agent would refuse is never stored, so
it is never published (issue #12 defect 2).
"""

from __future__ import annotations

from typing import Any

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.reconcile.fleet_pass import FleetView
from edgefleet_orchestrator.reconcile.sizes import (
    DOCUMENT_LIMIT_BYTES,
    HEADROOM_BYTES,
    oversized_for,
)
from edgefleet_orchestrator.service.state import ControlState


def trial_view(state: ControlState) -> FleetView:
    """The live fleet as a pass would see it now, for a trial pass that publishes nothing
    (the size check here, and ``plan``'s placement)."""
    now = state.clock()
    return FleetView(
        apps=state.apps,
        nodes=state.registry.nodes,
        assignments=list(state.assignments),
        published={},
        now=now,
        started_at=now,
        control=state.control,
    )


def oversize_refusal(app: AppManifest, state: ControlState) -> tuple[str, dict[str, Any]] | None:
    """The refusal's message and details when ``app`` (as it would be after the change)
    makes a node's document too large; ``None`` when every document fits."""
    found = oversized_for(app.name, {**state.apps, app.name: app}, trial_view(state))
    if not found:
        return None
    worst = found[0]
    limit = DOCUMENT_LIMIT_BYTES - HEADROOM_BYTES
    message = (
        f"node {worst.node}'s desired document would be {worst.bytes} bytes with "
        f"{worst.replicas} replica(s) of {app.name} (about {worst.replica_bytes} bytes each); "
        f"agents accept at most {limit}: make the workload spec smaller (env), or spread it "
        "(placement.max_per_node, fewer replicas)"
    )
    details = {
        "node": worst.node,
        "bytes": worst.bytes,
        "limit": limit,
        "replica_bytes": worst.replica_bytes,
    }
    return message, details
