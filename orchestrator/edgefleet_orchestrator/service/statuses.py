"""Which app statuses and which fleet summary to publish after a pass or a report.

:class:`StatusBoard` remembers what was last published and turns the current state into the
publications that changed: a new or changed app status; for a deleted app a last
``deleted`` status followed by the clear (an empty retained payload), in that order; the
fleet summary when a count moved; each app's rollout status when it changed (cleared
with its app). It publishes nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgefleet_protocol import FleetSummary, TopicKind, Topics
from edgefleet_protocol.session import Publication

from edgefleet_orchestrator.placement.model import AppPlacement
from edgefleet_orchestrator.reconcile.compliance import noncompliance
from edgefleet_orchestrator.reconcile.fleet_pass import PassResult
from edgefleet_orchestrator.reconcile.status import (
    RowMemo,
    app_statuses,
    fleet_summary,
    same_status,
)
from edgefleet_orchestrator.service.config import ServiceStats
from edgefleet_orchestrator.service.rollouts import RolloutBoard
from edgefleet_orchestrator.service.state import ControlState


class StatusBoard:
    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self._summary: FleetSummary | None = None
        self._rollouts = RolloutBoard(topics)
        self._rows = RowMemo()

    def publications(
        self,
        state: ControlState,
        *,
        placements: Mapping[str, AppPlacement],
        last: PassResult | None,
        now: float,
    ) -> list[Publication]:
        """What changed since the last call, in publishing order; updates ``state.statuses``."""
        topics = self._topics
        nodes = state.registry.nodes
        statuses = app_statuses(
            state.apps,
            state.assignments,
            nodes,
            placements=placements,
            verdicts=last.verdicts if last is not None else {},
            control=state.control,
            now=now,
            rollouts=state.rollouts,
            rows=self._rows,
        )
        pubs = []
        for name, status in statuses.items():
            if not same_status(state.statuses.get(name), status):
                pubs.append(Publication.of(TopicKind.APP_STATUS, topics.app_status(name), status))
        for name, old in state.statuses.items():
            if name not in statuses:
                gone = old.model_copy(update={"state": "deleted", "updated_at": now, "running": 0})
                pubs.append(Publication.of(TopicKind.APP_STATUS, topics.app_status(name), gone))
                pubs.append(Publication(topic=topics.app_status(name), payload=b"", retain=True))
        state.statuses = statuses
        noncompliant = noncompliance(nodes, state.issued)
        summary = fleet_summary(nodes, statuses, now=now, noncompliant=noncompliant)
        if self._summary is None or self._summary.model_copy(
            update={"ts": 0}
        ) != summary.model_copy(update={"ts": 0}):
            pubs.append(Publication.of(TopicKind.FLEET_SUMMARY, topics.fleet_summary(), summary))
            self._summary = summary
        pubs.extend(self._rollouts.publications(state))
        return pubs


def note_converged(stats: ServiceStats, state: ControlState, *, now: float) -> None:
    """Deploy-to-running: an app deployed (or changed) by a command counts as converged
    when its status first shows every desired replica running; a deleted app is
    forgotten. Called after each status computation."""
    waiting = stats.deploys_waiting
    for app, since in list(waiting.items()):
        status = state.statuses.get(app)
        if app not in state.apps:
            del waiting[app]
        elif status is not None and status.desired > 0 and status.running >= status.desired:
            stats.deploy_to_running_seconds.observe(max(0.0, now - since))
            del waiting[app]
