"""Running one reconcile pass from the live state, and what the shell keeps between passes.

:class:`PassRunner` builds the :class:`~edgefleet_orchestrator.reconcile.fleet_pass.FleetView`
from the live state, calls the pure pass, stores its result (one transaction) and only then
adopts it: a crash can never make a published generation go backwards. It remembers what
the next pass and the (re)connect need: the generation and bytes of every node's last
document, the control documents last stored, the rebalancing gate and the drain
milestones to announce. It publishes nothing; the service does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from edgefleet_protocol import Desired, TopicKind, Topics, encode
from edgefleet_protocol.codec import decode
from edgefleet_protocol.session import Publication

from edgefleet_orchestrator.fleet.liveness import settled_online
from edgefleet_orchestrator.fleet.notes import Note
from edgefleet_orchestrator.fleet.replicas import SpecMemo
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_orchestrator.placement.model import AppPlacement, ViewCache
from edgefleet_orchestrator.reconcile.documents import DocumentMemo, Published
from edgefleet_orchestrator.reconcile.fleet_pass import (
    Control,
    FleetView,
    Knobs,
    PassResult,
)
from edgefleet_orchestrator.reconcile.isolation import Isolation, reconcile_isolating
from edgefleet_orchestrator.scaling.drain import milestones
from edgefleet_orchestrator.scaling.rebalance import RebalanceGate
from edgefleet_orchestrator.security.signer import sign_document
from edgefleet_orchestrator.service.config import OrchestratorConfig, ServiceStats
from edgefleet_orchestrator.service.rollouts import CLOCKED, rollouts_from_snapshot, step_rollouts
from edgefleet_orchestrator.service.secrets import seal_changes, stored_secrets
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store, StoreSnapshot
from edgefleet_orchestrator.store.control import documents
from edgefleet_orchestrator.store.passes import persist_pass


class PassRunner:
    def __init__(
        self,
        config: OrchestratorConfig,
        *,
        state: ControlState,
        store: Store,
        snapshot: StoreSnapshot,
        stats: ServiceStats,
        started_at: float,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._state = state
        self._store = store
        self._stats = stats
        self._started_at = started_at
        self._clock = clock
        self._stored_control = documents(state.control)
        self._rebalance = RebalanceGate(config.rebalance_max_moves, config.rebalance_interval_s)
        self._last_scaling_pass = float("-inf")
        self._settles_at: float | None = None
        self._placement_memo = PlacementMemo()
        self._spec_memo = SpecMemo()
        self._document_memo = DocumentMemo()
        self._views = ViewCache()
        self.last_result: PassResult | None = None
        self.placements: dict[str, AppPlacement] = {}
        self.drain_milestones: list[tuple[str, str, str]] = []
        self.isolated: dict[str, Isolation] = {}
        """Nodes the passes leave out because their data broke (or would break) a pass."""
        self.isolation_changes: tuple[list[Isolation], list[Isolation]] = ([], [])
        """Of the last pass: (newly isolated, released) — the shell reports both."""
        state.rollouts = rollouts_from_snapshot(snapshot)
        self.published: dict[str, Published] = {
            g.node: Published(site=g.site, generation=g.generation, doc_hash=g.doc_hash)
            for g in snapshot.generations.values()
        }
        self._stored_docs = {g.node: (g.site, g.doc_json) for g in snapshot.generations.values()}
        state.issued.update({g.node: g.generation for g in snapshot.generations.values()})
        state.secrets.update(stored_secrets(snapshot.control))
        self._resign_stored_documents()

    def _resign_stored_documents(self) -> None:
        """Stored documents signed by another key (or none) are re-signed in memory, same
        generation, so a republish after a key rotation carries the current key (agents
        treat the same generation and workloads as unchanged)."""
        signer = self._config.signer
        if signer is None:
            return
        for node, (site, doc_json) in list(self._stored_docs.items()):
            if json.loads(doc_json).get("key_id") == signer.key_id:
                continue
            signed = sign_document(decode(Desired, doc_json), signer)
            self._stored_docs[node] = (site, encode(signed).decode())

    def _reseal_where_secrets_changed(self) -> None:
        """A secret set since the last pass: every node whose document names it gets a new
        generation (re-sealed) — the first set after a deploy is how its workloads start."""
        dirty, self._state.secrets_dirty = self._state.secrets_dirty, set()
        for node, (_, doc_json) in self._stored_docs.items():
            names = {s.name for w in decode(Desired, doc_json).workloads for s in w.spec.secrets}
            if names & dirty and node in self.published:
                self.published[node] = replace(self.published[node], doc_hash="resealed")

    def _sign(self, result: PassResult) -> None:
        """Sign every document of ``result`` in place (before it is stored or published)."""
        seal_changes(result.documents, self._state, self._config.sealing_key)
        signer = self._config.signer
        if signer is None:
            return
        signed = []
        for change in result.documents:
            stored = self._stored_docs.get(change.node)
            previous = float(json.loads(stored[1])["issued_at"]) if stored else None
            document = sign_document(change.document, signer, previous_issued_at=previous)
            signed.append(replace(change, document=document))
        result.documents[:] = signed

    def run(self) -> PassResult:
        started = time.perf_counter()
        state = self._state
        now = self._clock()
        # Rebalancing targets only nodes that stayed online long enough (anti-flap), and
        # waits while any returning node has not settled yet: it would be the emptiest.
        online, self._settles_at = settled_online(
            state.registry.nodes, now, self._config.rebalance_settle_s
        )
        rebalance, budget = self._rebalance.budget(online, now)
        rebalance = rebalance and self._settles_at is None
        knobs = Knobs(
            resize_cooldown_s=self._config.resize_cooldown_s,
            rebalance=rebalance,
            rebalance_budget=budget,
            timer=time.perf_counter,
            memo=self._placement_memo,
            specs=self._spec_memo,
            documents=self._document_memo,
            views=self._views,
        )
        # Rollouts step first: the replicas they release get the new spec in this pass.
        rollout_notes = step_rollouts(state, self._store, now)
        self._reseal_where_secrets_changed()  # before the view copies ``published``
        view = FleetView(
            apps=dict(state.apps),
            nodes=state.registry.nodes,
            assignments=list(state.assignments),
            published=dict(self.published),
            now=now,
            started_at=self._started_at,
            seed=self._config.seed,
            control=state.control,
            knobs=knobs,
            rollouts=dict(state.rollouts),
        )
        result, isolated = reconcile_isolating(view, self.isolated)
        result.notes.extend(Note(kind="rollout", app=a, message=m) for a, m in rollout_notes)
        started_now = [
            i for n, i in isolated.items() if (p := self.isolated.get(n)) is None or p != i
        ]
        released = [i for n, i in self.isolated.items() if n not in isolated]
        self.isolation_changes = (started_now, released)
        self.isolated = isolated
        self._sign(result)
        self._stored_control = persist_pass(
            self._store,
            result,
            apps=state.apps,
            assignments_before=state.assignments,
            retiring_before=state.control.retiring,
            control_docs_before=self._stored_control,
        )
        state.assignments = list(result.assignments)
        state.apps.update(result.rescaled)
        state.rollouts.update(result.rollouts)
        # Drains come and go by command between passes: keep the command's view of them.
        state.control = Control(
            autoscale=result.control.autoscale,
            resized_at=result.control.resized_at,
            drains=state.control.drains,
            retiring=result.control.retiring,
        )
        previous = state.drains
        state.drains = result.drains
        self.drain_milestones = list(milestones(previous, result.drains))
        self._rebalance.after(
            asked=rebalance,
            budget=budget,
            started=sum(
                1 for r in result.control.retiring if r.cause == "rebalance" and r.since == now
            ),
            settled=result.rebalance.settled,
            in_flight=any(r.cause == "rebalance" for r in result.control.retiring),
            now=now,
        )
        self.last_result = result
        if self.scales():
            self._last_scaling_pass = now
        self.placements = result.placements
        for change in result.documents:
            self.published[change.node] = Published(change.site, change.generation, change.doc_hash)
            state.issued[change.node] = change.generation
            self._stored_docs[change.node] = (change.site, encode(change.document).decode())
        self._stats.passes += 1
        took = time.perf_counter() - started
        self._stats.last_pass_ms = took * 1000
        self._stats.pass_seconds.observe(took)
        self._stats.placement_seconds.observe(result.placement_s)
        return result

    def stored_documents(self, topics: Topics) -> list[Publication]:
        """Every node's last desired document, byte for byte as stored (for a reconnect)."""
        return [
            Publication(
                topic=topics.node_desired(site, node), payload=doc_json.encode(), qos=1, retain=True
            )
            for node, (site, doc_json) in sorted(self._stored_docs.items())
        ]

    @staticmethod
    def documents_of(result: PassResult, topics: Topics) -> list[Publication]:
        return [
            Publication.of(TopicKind.NODE_DESIRED, topics.node_desired(c.site, c.node), c.document)
            for c in result.documents
        ]

    def moves_wait_on_reports(self) -> bool:
        """Whether a report can let a move go on (finish a copy, free a drain's budget)."""
        control = self._state.control
        draining = any(
            self._state.drains.get(node, {}).get("state") != "drained" for node in control.drains
        )
        rolling = any(r.active for r in self._state.rollouts.values())
        return bool(control.retiring or draining or self._rebalance.wanted or rolling)

    def scales(self) -> bool:
        """Whether any app follows telemetry (autoscale or sized limits)."""
        return any(
            app.autoscale is not None or app.workload.resources.auto is not None
            for app in self._state.apps.values()
        )

    def scaling_due(self, now: float) -> bool:
        """Telemetry moved on: autoscaling and sizing should look again; or a rollout is in
        progress (its deadlines, waits and wave pauses run on the clock, every tick; a
        paused one or one awaiting promotion waits for an operator or a report)."""
        if any(r.phase in CLOCKED for r in self._state.rollouts.values()):
            return True
        return self.scales() and now - self._last_scaling_pass >= self._config.scaling_interval_s

    def rebalance_due(self, now: float) -> bool:
        """The churn budget has room again, or a returning node has settled."""
        if self._settles_at is not None and now >= self._settles_at:
            self._settles_at = None
            return True
        return self._rebalance.due(now)

    def resume(self, now: float) -> str:
        """The orchestrator sees the broker again: every offline clock restarts now, and
        nodes it has not heard of since count as gone only from now (like a start).
        Returns the sentence for the ``broker`` event."""
        restarted = self._state.registry.resume(now)
        self._started_at = now
        return (
            f"orchestrator reconnected to the broker: the disconnect grace of {restarted}"
            f" offline node(s) starts again now; settling {self._config.settle_s:g} s"
        )
