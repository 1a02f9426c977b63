"""The orchestrator service: the thin shell around registry, placement and reconcile.

Who calls it: ``edgefleet orchestrator run``, tests. It wires :mod:`.commands` (intake,
access) over :mod:`.handlers`, :mod:`.passes`, :mod:`.statuses`, :mod:`.events`.

Invariants:

* All state (:class:`ControlState`, the store) is touched only from this process's event
  loop; the pure reconcile pass runs synchronously, so it always sees one consistent view.
* Inputs only mark the fleet dirty; one reconcile task coalesces them: it waits for
  ``dirty``, lets a short debounce collect the rest of a burst, then runs ONE pass over the
  full current state (level-triggered). Passes are counted in ``stats.passes``.
* A pass is written to the store (one transaction) before any desired document of it is
  published, so a crash can never make a published generation go backwards.
* A bad message never stops a loop: it is dropped, counted, and (rate-limited) reported on
  ``orchestrator/events``.
* Scaling state that outlives a pass (:class:`~edgefleet_orchestrator.reconcile.fleet_pass.Control`)
  lives in ``state.control``; a pass's manifests rescaled by the autoscaler, its control
  state and its assignments are stored in the pass's transaction, before anything of it
  is published. Autoscaling and sizing read telemetry, which does not wake the loop by
  itself: the tick runs a pass every ``scaling_interval_s`` while any app scales.
* Grace is measured only while the orchestrator sees the broker. While its session is
  down no pass runs and nothing goes stale; after every reconnect (not only the first) it
  restarts every offline clock (:meth:`Registry.resume`) and settles ``settle_s`` for
  retained state to replay before the next pass, exactly as at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from edgefleet_protocol import (
    ProtocolError,
    Topics,
)
from edgefleet_protocol.manifest import load_manifest
from edgefleet_protocol.sealing import public_text
from edgefleet_protocol.session import Publication, Session

from edgefleet_orchestrator import __version__
from edgefleet_orchestrator.fleet.records import IngestResult
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.reconcile.fleet_pass import PassResult
from edgefleet_orchestrator.service.commands import CommandIntake
from edgefleet_orchestrator.service.config import OrchestratorConfig, ServiceStats
from edgefleet_orchestrator.service.events import EventPublisher, publish_documents
from edgefleet_orchestrator.service.inbound import Inbound
from edgefleet_orchestrator.service.intake import CommandQueue
from edgefleet_orchestrator.service.passes import PassRunner
from edgefleet_orchestrator.service.presence import Presence
from edgefleet_orchestrator.service.services import ServiceBoard
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.service.statuses import StatusBoard, note_converged
from edgefleet_orchestrator.service.tasks import cancel_all
from edgefleet_orchestrator.store.base import Store
from edgefleet_orchestrator.store.control import control_from_snapshot
from edgefleet_orchestrator.store.sqlite import open_store

log = logging.getLogger("edgefleet.orchestrator")

BATCH = 10_000
"""Inbound messages handled per turn at most (the session's whole queue): the more of one
node's telemetry a batch holds, the more of it is merged before the registry sees it."""


class Orchestrator:
    def __init__(
        self,
        config: OrchestratorConfig,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.topics = Topics(config.root)
        self.clock = clock
        self.store: Store = store if store is not None else open_store(config.data_dir)
        self.stats = ServiceStats()
        self.started_at = clock()
        snapshot = self.store.load()
        control, skipped = control_from_snapshot(snapshot)
        for line in skipped:
            log.warning("skipped unreadable control state %s", line)
        self.state = ControlState(
            apps={
                name: load_manifest(rec.manifest_json, source=f"stored app {name}")
                for name, rec in snapshot.apps.items()
            },
            registry=Registry(
                stale_after_s=config.stale_after_s,
                cordoned=snapshot.cordoned,
                burst=config.liveness()[0],
                flap=config.liveness()[1],
            ),
            assignments=list(snapshot.assignments.values()),
            control=control,
            policy=config.policy,
            sealing_key=config.sealing_key,
            access=config.access,
            clock=clock,
        )
        self.passes = PassRunner(
            config,
            state=self.state,
            store=self.store,
            snapshot=snapshot,
            stats=self.stats,
            started_at=self.started_at,
            clock=clock,
        )
        self._statuses = StatusBoard(self.topics)
        self.services = ServiceBoard(self.topics)
        self._dirty = asyncio.Event()
        self._status_dirty = asyncio.Event()
        self._ready = asyncio.Event()
        self._seen_broker = False
        sealing = public_text(config.sealing_key) if config.sealing_key else None
        self.presence = Presence(self.topics, since=self.started_at, version=__version__,
                                 sealing_key=sealing)  # fmt: skip
        self.session = Session(
            config.broker,
            client_id=config.client_id,
            will=self.presence.publication("offline"),
            subscriptions=[
                self.topics.all_nodes(),
                *self.topics.command_filters(),
                self.topics.orchestrator_status(),  # a rival's status (service.presence)
            ],
            on_connect=self._on_connect,
        )
        self.presence.bind(self.session)
        self.session.on_published = self._count_published
        self.events = EventPublisher(
            self.session,
            self.topics,
            self.stats,
            max_rejections_per_s=config.max_events_per_s,
            clock=clock,
            recent=self.state.recent_events,
        )
        self.commands = CommandIntake(
            root=config.root,
            session=self.session,
            store=self.store,
            state=self.state,
            events=self.events,
            stats=self.stats,
            on_change=self._after_command,
            clock=clock,
        )
        self.inbound = Inbound(self)
        self.intake = CommandQueue(
            root=config.root,
            session=self.session,
            intake=self.commands,
            events=self.events,
            stats=self.stats,
            clock=clock,
            limits=config.intake,
        )

    @property
    def published(self) -> dict[str, Any]:
        """The generation, site and hash of every node's last desired document."""
        return self.passes.published

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (or a loop fails), then publish ``offline`` and
        disconnect. A loop's unexpected exception is raised from here once all stopped."""
        self.session.start()
        loops = [
            asyncio.create_task(self._consume(), name="orchestrator-inbound"),
            asyncio.create_task(self._reconcile_loop(), name="orchestrator-reconcile"),
            asyncio.create_task(self._tick_loop(), name="orchestrator-tick"),
            asyncio.create_task(self.intake.serve(), name="orchestrator-commands"),
        ]
        stopper = asyncio.create_task(stop.wait(), name="orchestrator-stop")
        try:
            await asyncio.wait([*loops, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_all([*loops, stopper])
            await self.session.close([self.presence.publication("offline")])
            self.store.close()
        failures = [e for t in loops if not t.cancelled() and (e := t.exception()) is not None]
        if failures:
            raise failures[0]

    async def _on_connect(self) -> None:
        """After every (re)connect: presence, then every node's last desired document (the
        store, not broker persistence, is the source of truth), then statuses."""
        await self.presence.announce()
        if not await self.presence.check(self.config.settle_s):
            return  # a rival serves this broker: publish nothing (the inbound loop stops us)
        if self._seen_broker:
            # Back after an outage of our own: nothing heard meanwhile says a node failed.
            self._ready.clear()
            await self.events.event("warning", "broker", self.passes.resume(self.clock()))
        self._seen_broker = True
        docs = self.passes.stored_documents(self.topics)
        self.stats.documents_published += await publish_documents(self.session, self.events, docs)
        if not self._ready.is_set():
            # Let the broker replay retained node state before the first pass, so a
            # (re)start sees the fleet as it is rather than empty or as it was.
            await asyncio.sleep(self.config.settle_s)
            self._ready.set()
        self._dirty.set()
        self._status_dirty.set()

    # -- inbound --------------------------------------------------------------------------

    async def _consume(self) -> None:
        """Every batch the session has waiting, through :class:`Inbound`."""
        while True:
            await self.inbound.handle(await self.session.batch(BATCH))
            await asyncio.sleep(0)  # a batch never blocks other tasks (or the reader) longer

    async def note_ingest(self, result: IngestResult) -> None:
        """Mark the fleet (and statuses, services) dirty after a node message."""
        if result.scheduling_relevant:
            self._dirty.set()
        elif result.status_relevant and self.passes.moves_wait_on_reports():
            self._dirty.set()  # a replacement may run now: its old copy can stop
        if result.status_relevant or result.scheduling_relevant:
            self._status_dirty.set()
            await self._publish_services()  # an endpoint is usable as soon as it reports

    @staticmethod
    def _count(counts: dict[str, int], key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    def _count_published(self, pub: Publication) -> None:
        """Outbound messages by topic kind; anything else we publish is a command reply."""
        try:
            kind = self.topics.parse(pub.topic).kind.value
        except ProtocolError:
            kind = "reply"
        self._count(self.stats.published_by_kind, kind)

    def _after_command(self, placement_changed: bool) -> None:
        if placement_changed:
            self._dirty.set()
        self._status_dirty.set()

    # -- reconcile ------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await self._ready.wait()
            await self._dirty.wait()
            await asyncio.sleep(self.config.debounce_s)
            if not self._ready.is_set():
                continue  # the broker went away meanwhile: decide nothing blind
            self._dirty.clear()
            try:
                result = self.passes.run()
            except Exception as exc:  # no node explains it (see reconcile.isolation)
                log.exception("reconcile pass failed")
                await self.events.event(
                    "error",
                    "reconcile-failed",
                    f"the reconcile pass failed and was skipped: {type(exc).__name__}: {exc}",
                )
                continue  # the next input tries again; the loop and commands go on
            self._status_dirty.set()
            await self.events.isolations(*self.passes.isolation_changes)
            await self._publish_pass(result)
            await self._publish_statuses()

    async def _publish_pass(self, result: PassResult) -> None:
        docs = self.passes.documents_of(result, self.topics)
        self.stats.documents_published += await publish_documents(self.session, self.events, docs)
        for text in result.events:
            await self.events.event("info", "placement", text)
        for note in result.notes:
            await self.events.event(
                note.level,
                note.kind,
                note.message,
                app=note.app,
                node=note.node,
                details=dict(note.details),
            )
        for node, state, text in self.passes.drain_milestones:
            level: Literal["info", "warning"] = "warning" if state == "stuck" else "info"
            await self.events.event(level, "drain", text, node=node, details={"state": state})
        self.passes.drain_milestones = []

    async def _publish_statuses(self) -> None:
        self._status_dirty.clear()
        pubs = self._statuses.publications(
            self.state,
            placements=self.passes.placements,
            last=self.passes.last_result,
            now=self.clock(),
        )
        note_converged(self.stats, self.state, now=self.clock())
        # In order (one connection, written in sequence): a deleted app's status must
        # land before its clear.
        await self.session.publish_many(pubs)
        await self._publish_services()

    async def _publish_services(self) -> None:
        if self._ready.is_set():  # never before node state was replayed: no blank catalog
            await self.services.publish(self.session, self.state, now=self.clock())

    async def _tick_loop(self) -> None:
        """The timer input: staleness, disconnect grace expiry, and status refresh."""
        while True:
            await asyncio.sleep(self.config.tick_s)
            await self.events.flush_summaries()
            await self.intake.flush_summaries()
            now = self.clock()
            if not self.session.connected.is_set():
                self._ready.clear()  # blind: no pass, no staleness until resume()
                continue
            for change in self.state.registry.sweep(now):
                await self.events.event(
                    change.level, "node", change.reason, node=change.node, site=change.site
                )
                self._dirty.set()
            if self._assigned_to_absent_nodes():
                self._dirty.set()  # a grace may have run out; the pass decides
            if self.passes.scaling_due(now):
                self._dirty.set()  # telemetry moved on: autoscaling and sizing look again
            if self.passes.rebalance_due(now):
                self._dirty.set()  # the churn budget has room again, or a node settled
            if self._status_dirty.is_set() and not self._dirty.is_set() and self._ready.is_set():
                await self._publish_statuses()
            await self._publish_services()  # weights follow node load (telemetry)

    def _assigned_to_absent_nodes(self) -> bool:
        nodes = self.state.registry.nodes
        return any(
            (rec := nodes.get(a.node)) is None or rec.state != "online"
            for a in self.state.assignments
        )


__all__ = ["Orchestrator", "OrchestratorConfig"]
