"""The shell around the rollout state machine: load at start, step before each pass,
store every change, publish the retained ``apps/{app}/rollout`` status.

Who calls it: the orchestrator at start (:func:`rollouts_from_snapshot`), the pass runner
before each reconcile pass (:func:`step_rollouts`), and the service after each pass and
on (re)connect (:class:`RolloutBoard`). A rollout's state is stored before the pass that
acts on it publishes anything, so a restarted orchestrator releases exactly the replicas
it had released (same documents, same generations: nothing restarts twice).
"""

from __future__ import annotations

import logging

from edgefleet_protocol import RolloutStatus, TopicKind, Topics
from edgefleet_protocol.session import Publication

from edgefleet_orchestrator.rollout.machine import step
from edgefleet_orchestrator.rollout.state import RolloutState, from_json, status_of, to_json
from edgefleet_orchestrator.rollout.view import rollout_view
from edgefleet_orchestrator.service.rollout_handlers import restore_manifest
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store, StoreSnapshot

log = logging.getLogger("edgefleet.orchestrator")

CLOCKED = frozenset({"canary", "progressing", "reverting"})
"""Rollout phases that move on the clock alone (deadlines, waits, wave pauses)."""


def rollouts_from_snapshot(snapshot: StoreSnapshot) -> dict[str, RolloutState]:
    """Every stored rollout; one that cannot be read is skipped with a warning (its app
    then runs its manifest's spec everywhere, as without a rollout)."""
    rollouts: dict[str, RolloutState] = {}
    for app, text in sorted(snapshot.rollouts.items()):
        try:
            rollouts[app] = from_json(text)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("skipped unreadable rollout state of %s: %s", app, exc)
    return rollouts


def step_rollouts(state: ControlState, store: Store, now: float) -> list[tuple[str, str]]:
    """Step every active rollout; store and adopt what changed. An abort that reverts puts
    the start workload back into the app's manifest (stored), so the pass sends it to every
    replica. Returns ``(app, note)`` lines for the audit trail."""
    notes: list[tuple[str, str]] = []
    for name, rollout in sorted(state.rollouts.items()):
        app = state.apps.get(name)
        if app is None or not rollout.active:
            continue
        mine = [a for a in state.assignments if a.app == name]
        built = rollout_view(app, rollout, mine, state.registry.nodes)
        nxt, lines = step(rollout, built.view, now)
        notes.extend((name, line) for line in lines)
        if nxt == rollout:
            continue
        with store.transaction():
            if nxt.phase == "reverting" and rollout.phase != "reverting":
                restored = restore_manifest(app, nxt)
                store.put_app(name, restored.model_dump_json(exclude_none=True))
                state.apps[name] = restored
            store.put_rollout(name, to_json(nxt))
        state.rollouts[name] = nxt
    return notes


class RolloutBoard:
    """Publishes each app's rollout status when it changed (and clears a deleted app's)."""

    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self._last: dict[str, RolloutStatus] = {}

    def publications(self, state: ControlState, *, everything: bool = False) -> list[Publication]:
        pubs: list[Publication] = []
        for name, rollout in sorted(state.rollouts.items()):
            app = state.apps.get(name)
            if app is None:
                continue
            mine = [a for a in state.assignments if a.app == name]
            built = rollout_view(app, rollout, mine, state.registry.nodes)
            status = status_of(rollout, total=len(built.view.replicas), updated=built.updated)
            if not everything and self._last.get(name) == status:
                continue
            self._last[name] = status
            topic = self._topics.app_rollout(name)
            pubs.append(Publication.of(TopicKind.APP_ROLLOUT, topic, status))
        for name in sorted(set(self._last) - set(state.rollouts)):
            del self._last[name]
            topic = self._topics.app_rollout(name)
            pubs.append(Publication(topic=topic, payload=b"", qos=1, retain=True))
        return pubs

    def active(self, state: ControlState) -> bool:
        return any(r.active for r in state.rollouts.values())
