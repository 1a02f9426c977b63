"""The orchestrator service: the thin shell around registry, placement and reconcile.

Who calls it: ``edgefleet orchestrator run`` (cli_orchestrator.py) and the tests.

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
* Scaling state that outlives a pass (:class:`~edgefleet_orchestrator.reconcile.Control`)
  lives in ``state.control``; a pass's manifests rescaled by the autoscaler, its control
  state and its assignments are stored in the pass's transaction, before anything of it
  is published. Autoscaling and sizing read telemetry, which does not wake the loop by
  itself: the tick runs a pass every ``scaling_interval_s`` while any app scales.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgefleet_protocol import (
    CommandReply,
    Desired,
    Event,
    FleetSummary,
    OrchestratorStatus,
    ProtocolError,
    TopicKind,
    Topics,
    decode,
    decode_for_kind,
    encode,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.commands import (
    ErrorCode,
    check_reply_to,
    error_reply,
    parse_command,
    parse_envelope,
    rejection_reply,
    resolve_reply_to,
)
from edgefleet_protocol.session import MAX_INFLIGHT, InboundMessage, Publication, Session
from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_orchestrator import __version__
from edgefleet_orchestrator.command_handlers import CommandFailed, ControlState, handle
from edgefleet_orchestrator.control_store import control_from_snapshot, documents
from edgefleet_orchestrator.desired import Published
from edgefleet_orchestrator.drain import milestones
from edgefleet_orchestrator.manifest import load_manifest
from edgefleet_orchestrator.pass_store import persist_pass
from edgefleet_orchestrator.placement.model import AppPlacement
from edgefleet_orchestrator.rebalance import RebalanceGate
from edgefleet_orchestrator.reconcile import Control, FleetView, Knobs, PassResult, reconcile
from edgefleet_orchestrator.registry import DEFAULT_STALE_AFTER_S, Registry
from edgefleet_orchestrator.status import app_statuses, fleet_summary, same_status
from edgefleet_orchestrator.store import Store
from edgefleet_orchestrator.store_sqlite import open_store

log = logging.getLogger("edgefleet.orchestrator")


@dataclass(frozen=True, slots=True)
class OrchestratorConfig:
    broker: BrokerSettings
    data_dir: Path
    root: str = DEFAULT_ROOT
    client_id: str = "edgefleet-orchestrator"
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    debounce_s: float = 0.05
    tick_s: float = 1.0
    settle_s: float = 1.0
    seed: int = 0
    max_events_per_s: float = 20.0
    scaling_interval_s: float = 15.0
    """How often autoscaling and sizing look at telemetry again (a pass every interval
    while any app has ``autoscale`` or ``resources.auto``)."""
    resize_cooldown_s: float = 60.0
    rebalance_max_moves: int = 2
    """Rebalancing's churn budget: at most this many moves per ``rebalance_interval_s``
    (0 turns rebalancing off)."""
    rebalance_interval_s: float = 60.0


@dataclass
class ServiceStats:
    passes: int = 0
    messages: int = 0
    rejected: int = 0
    commands: int = 0
    documents_published: int = 0
    last_pass_ms: float = 0.0
    rejections_by_reason: dict[str, int] = field(default_factory=dict)


class _EventBudget:
    """Token bucket for rejection events: a hostile flood must not become an event flood."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


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
            registry=Registry(stale_after_s=config.stale_after_s, cordoned=snapshot.cordoned),
            assignments=list(snapshot.assignments.values()),
            control=control,
            clock=clock,
        )
        self._stored_control = documents(control)
        self._last_result: PassResult | None = None
        self._last_scaling_pass = float("-inf")
        self._rebalance = RebalanceGate(config.rebalance_max_moves, config.rebalance_interval_s)
        self._drain_milestones: list[tuple[str, str, str]] = []
        self.published: dict[str, Published] = {
            g.node: Published(site=g.site, generation=g.generation, doc_hash=g.doc_hash)
            for g in snapshot.generations.values()
        }
        self._stored_docs = {g.node: (g.site, g.doc_json) for g in snapshot.generations.values()}
        self._summary: FleetSummary | None = None
        self._placements: dict[str, AppPlacement] = {}
        self._dirty = asyncio.Event()
        self._status_dirty = asyncio.Event()
        self._ready = asyncio.Event()
        self._budget = _EventBudget(config.max_events_per_s, clock)
        status_topic = self.topics.orchestrator_status()
        self.session = Session(
            config.broker,
            client_id=config.client_id,
            will=Publication.of(
                TopicKind.ORCHESTRATOR_STATUS, status_topic, self._status("offline")
            ),
            subscriptions=[self.topics.all_nodes(), self.topics.all_commands()],
            on_connect=self._on_connect,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (or a loop fails), then publish ``offline`` and
        disconnect. A loop's unexpected exception is raised from here once all stopped."""
        self.session.start()
        loops = [
            asyncio.create_task(self._consume(), name="orchestrator-inbound"),
            asyncio.create_task(self._reconcile_loop(), name="orchestrator-reconcile"),
            asyncio.create_task(self._tick_loop(), name="orchestrator-tick"),
        ]
        stopper = asyncio.create_task(stop.wait(), name="orchestrator-stop")
        try:
            await asyncio.wait([*loops, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_all([*loops, stopper])
            final = Publication.of(
                TopicKind.ORCHESTRATOR_STATUS,
                self.topics.orchestrator_status(),
                self._status("offline"),
            )
            await self.session.close([final])
            self.store.close()
        failures = [e for t in loops if not t.cancelled() and (e := t.exception()) is not None]
        if failures:
            raise failures[0]

    def _status(self, state: Literal["online", "offline"]) -> OrchestratorStatus:
        return OrchestratorStatus(state=state, since=self.started_at, version=__version__)

    async def _on_connect(self) -> None:
        """After every (re)connect: presence, then every node's last desired document (the
        store, not broker persistence, is the source of truth), then statuses."""
        await self.session.publish_model(
            TopicKind.ORCHESTRATOR_STATUS, self.topics.orchestrator_status(), self._status("online")
        )
        docs = [
            Publication(
                topic=self.topics.node_desired(site, node),
                payload=doc_json.encode(),
                qos=1,
                retain=True,
            )
            for node, (site, doc_json) in sorted(self._stored_docs.items())
        ]
        await _publish_all(self.session, docs)
        self.stats.documents_published += len(docs)
        if not self._ready.is_set():
            # Let the broker replay retained node state before the first pass, so a
            # restart sees the fleet as it is rather than empty.
            await asyncio.sleep(self.config.settle_s)
            self._ready.set()
        self._dirty.set()
        self._status_dirty.set()

    # -- inbound --------------------------------------------------------------------------

    async def _consume(self) -> None:
        async for message in self.session.messages():
            self.stats.messages += 1
            try:
                await self._dispatch(message)
            except Exception:  # one message must never stop the loop
                log.exception("unexpected error handling %s", message.topic)
                await self._reject(message.topic, "internal error while handling the message")

    async def _dispatch(self, message: InboundMessage) -> None:
        try:
            parsed = self.topics.parse(message.topic)
        except ProtocolError as exc:
            await self._reject(message.topic, str(exc))
            return
        if parsed.kind is TopicKind.COMMAND:
            if message.retain:
                await self._reject(
                    message.topic, "retained command ignored: commands are never retained"
                )
                return
            await self._command(parsed.verb or "", message)
            return
        if parsed.kind in (TopicKind.NODE_DESIRED, TopicKind.NODE_EVENTS):
            return  # our own output, and agents' events (audit only)
        if not message.payload:
            return  # a cleared retained message
        assert parsed.site is not None
        assert parsed.node is not None
        try:
            model = decode_for_kind(parsed.kind, message.payload)
        except ProtocolError as exc:
            await self._reject(message.topic, str(exc), node=parsed.node)
            return
        result = self.state.registry.ingest(
            parsed.kind, parsed.site, parsed.node, model, self.clock(), retained=message.retain
        )
        if result.rejection:
            await self._reject(message.topic, result.rejection, node=parsed.node)
            return
        if result.event:
            await self._event("info", "node", result.event, node=parsed.node, site=parsed.site)
        if result.scheduling_relevant:
            self._dirty.set()
        elif result.status_relevant and self._moves_wait_on_reports():
            self._dirty.set()  # a replacement may run now: its old copy can stop
        if result.status_relevant or result.scheduling_relevant:
            self._status_dirty.set()

    async def _reject(self, topic: str, reason: str, *, node: str | None = None) -> None:
        self.stats.rejected += 1
        key = reason.split(":")[0][:80]
        self.stats.rejections_by_reason[key] = self.stats.rejections_by_reason.get(key, 0) + 1
        log.info("dropped message on %s: %s", topic, reason)
        if self._budget.take():
            await self._event(
                "warning",
                "message-rejected",
                f"dropped message on {topic[:200]}: {reason}",
                details={"topic": topic[:512], "reason": reason},
            )

    async def _event(
        self,
        level: Literal["debug", "info", "warning", "error"],
        kind: str,
        message: str,
        *,
        node: str | None = None,
        site: str | None = None,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        event = Event(
            ts=self.clock(),
            level=level,
            kind=kind,
            message=message[:4096],
            node=node,
            site=site,
            app=app,
            details=details or {},
        )
        await self.session.publish_model(
            TopicKind.ORCHESTRATOR_EVENTS, self.topics.orchestrator_events(), event
        )

    # -- commands -------------------------------------------------------------------------

    async def _command(self, verb: str, message: InboundMessage) -> None:
        self.stats.commands += 1
        try:
            envelope = parse_envelope(message.payload)
        except ProtocolError as exc:
            reply = error_reply(
                "unknown", ErrorCode.BAD_REQUEST, str(exc), verb=verb, details=exc.as_dict()
            )
            # No envelope means no reply_to; an MQTT 5 response topic still names one.
            await self._answer(
                reply,
                self._safe_reply_topic(message.response_topic),
                message.correlation_data,
                verb,
            )
            return
        try:
            reply_to = resolve_reply_to(self.config.root, envelope, message.response_topic)
        except ProtocolError as exc:
            reply = error_reply(
                envelope.request_id,
                ErrorCode.BAD_REPLY_TO,
                str(exc),
                verb=verb,
                details=exc.as_dict(),
            )
            await self._answer(reply, None, message.correlation_data, verb)
            return
        earlier = self.store.get_reply(envelope.request_id)
        if earlier is not None:
            await self._answer_raw(earlier.encode(), reply_to, message.correlation_data)
            return
        reply = self._execute(verb, envelope.request_id, message.payload)
        stored = self.store.remember_reply(envelope.request_id, verb, encode(reply).decode())
        await self._answer_raw(stored.encode(), reply_to, message.correlation_data)
        await self._audit(reply, verb)

    def _safe_reply_topic(self, topic: str | None) -> str | None:
        if topic is None:
            return None
        try:
            return check_reply_to(self.config.root, topic)
        except ProtocolError:
            return None

    def _execute(self, verb: str, request_id: str, payload: bytes) -> CommandReply:
        try:
            _, args = parse_command(verb, payload)
        except ProtocolError as exc:
            return rejection_reply(request_id, verb, exc)
        try:
            with self.store.transaction():
                outcome = handle(verb, args, self.state, self.store)
        except CommandFailed as exc:
            return error_reply(request_id, exc.code, exc.message, verb=verb, details=exc.details)
        except Exception as exc:
            log.exception("command %s failed", verb)
            return error_reply(
                request_id, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", verb=verb
            )
        if outcome.placement_changed:
            self._dirty.set()
        self._status_dirty.set()
        return CommandReply(request_id=request_id, verb=verb, ok=True, result=outcome.result)

    async def _answer(
        self, reply: CommandReply, reply_to: str | None, correlation: bytes | None, verb: str
    ) -> None:
        await self._answer_raw(encode(reply), reply_to, correlation)
        await self._audit(reply, verb)

    async def _answer_raw(
        self, payload: bytes, reply_to: str | None, correlation: bytes | None
    ) -> None:
        if reply_to is not None:
            await self.session.publish(
                Publication(
                    topic=reply_to,
                    payload=payload,
                    qos=1,
                    retain=False,
                    correlation_data=correlation,
                )
            )

    async def _audit(self, reply: CommandReply, verb: str) -> None:
        """Every command result also goes to ``orchestrator/events`` (the audit trail)."""
        text = f"command {verb} {reply.request_id}: " + (
            "ok" if reply.ok else f"{reply.error.code}: {reply.error.message}"  # type: ignore[union-attr]
        )
        await self._event(
            "info" if reply.ok else "warning",
            "command",
            text,
            details={"reply": reply.model_dump(mode="json", exclude_none=True)},
        )

    # -- reconcile ------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        await self._ready.wait()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.config.debounce_s)
            self._dirty.clear()
            result = self._pass()
            await self._publish_pass(result)
            await self._publish_statuses()

    def _pass(self) -> PassResult:
        started = time.perf_counter()
        now = self.clock()
        online = frozenset(
            n
            for n, r in self.state.registry.nodes.items()
            if r.state == "online" and r.capabilities is not None
        )
        rebalance, budget = self._rebalance.budget(online, now)
        knobs = Knobs(
            resize_cooldown_s=self.config.resize_cooldown_s,
            rebalance=rebalance,
            rebalance_budget=budget,
        )
        view = FleetView(
            apps=dict(self.state.apps),
            nodes=self.state.registry.nodes,
            assignments=list(self.state.assignments),
            published=dict(self.published),
            now=now,
            started_at=self.started_at,
            seed=self.config.seed,
            control=self.state.control,
            knobs=knobs,
        )
        result = reconcile(view)
        self._stored_control = persist_pass(
            self.store,
            result,
            apps=self.state.apps,
            assignments_before=self.state.assignments,
            retiring_before=self.state.control.retiring,
            control_docs_before=self._stored_control,
        )
        self.state.assignments = list(result.assignments)
        self.state.apps.update(result.rescaled)
        # Drains come and go by command between passes: keep the command's view of them.
        self.state.control = Control(
            autoscale=result.control.autoscale,
            resized_at=result.control.resized_at,
            drains=self.state.control.drains,
            retiring=result.control.retiring,
        )
        previous = self.state.drains
        self.state.drains = result.drains
        self._drain_milestones = list(milestones(previous, result.drains))
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
        self._last_result = result
        if self._scales():
            self._last_scaling_pass = now
        self._placements = result.placements
        for change in result.documents:
            self.published[change.node] = Published(change.site, change.generation, change.doc_hash)
            self._stored_docs[change.node] = (change.site, encode(change.document).decode())
        self.stats.passes += 1
        self.stats.last_pass_ms = (time.perf_counter() - started) * 1000
        self._status_dirty.set()
        return result

    def _moves_wait_on_reports(self) -> bool:
        """Whether a report can let a move go on (finish a copy, free a drain's budget)."""
        control = self.state.control
        draining = any(
            self.state.drains.get(node, {}).get("state") != "drained" for node in control.drains
        )
        return bool(control.retiring or draining or self._rebalance.wanted)

    def _scales(self) -> bool:
        """Whether any app follows telemetry (autoscale or sized limits)."""
        return any(
            app.autoscale is not None or app.workload.resources.auto is not None
            for app in self.state.apps.values()
        )

    async def _publish_pass(self, result: PassResult) -> None:
        docs = [
            Publication.of(
                TopicKind.NODE_DESIRED, self.topics.node_desired(c.site, c.node), c.document
            )
            for c in result.documents
        ]
        await _publish_all(self.session, docs)
        self.stats.documents_published += len(docs)
        for text in result.events:
            await self._event("info", "placement", text)
        for note in result.notes:
            await self._event(
                note.level,
                note.kind,
                note.message,
                app=note.app,
                node=note.node,
                details=dict(note.details),
            )
        for node, state, text in self._drain_milestones:
            level: Literal["info", "warning"] = "warning" if state == "stuck" else "info"
            await self._event(level, "drain", text, node=node, details={"state": state})
        self._drain_milestones = []

    async def _publish_statuses(self) -> None:
        self._status_dirty.clear()
        now = self.clock()
        nodes = self.state.registry.nodes
        last = self._last_result
        statuses = app_statuses(
            self.state.apps,
            self.state.assignments,
            nodes,
            placements=self._placements,
            verdicts=last.verdicts if last is not None else {},
            control=self.state.control,
            now=now,
        )
        pubs = []
        for name, status in statuses.items():
            if not same_status(self.state.statuses.get(name), status):
                pubs.append(
                    Publication.of(TopicKind.APP_STATUS, self.topics.app_status(name), status)
                )
        for name, old in self.state.statuses.items():
            if name not in statuses:
                gone = old.model_copy(update={"state": "deleted", "updated_at": now, "running": 0})
                pubs.append(
                    Publication.of(TopicKind.APP_STATUS, self.topics.app_status(name), gone)
                )
                pubs.append(
                    Publication(topic=self.topics.app_status(name), payload=b"", retain=True)
                )
        self.state.statuses = statuses
        summary = fleet_summary(nodes, statuses, now=now)
        if self._summary is None or self._summary.model_copy(
            update={"ts": 0}
        ) != summary.model_copy(update={"ts": 0}):
            pubs.append(
                Publication.of(TopicKind.FLEET_SUMMARY, self.topics.fleet_summary(), summary)
            )
            self._summary = summary
        for pub in pubs:  # in order: a deleted app's status must land before its clear
            await self.session.publish(pub)

    async def _tick_loop(self) -> None:
        """The timer input: staleness, disconnect grace expiry, and status refresh."""
        while True:
            await asyncio.sleep(self.config.tick_s)
            now = self.clock()
            for change in self.state.registry.sweep(now):
                await self._event(
                    "warning", "node", change.reason, node=change.node, site=change.site
                )
                self._dirty.set()
            if self._assigned_to_absent_nodes():
                self._dirty.set()  # a grace may have run out; the pass decides
            if self._scales() and now - self._last_scaling_pass >= self.config.scaling_interval_s:
                self._dirty.set()  # telemetry moved on: autoscaling and sizing look again
            if self._rebalance.due(now):
                self._dirty.set()  # the churn budget has room again
            if self._status_dirty.is_set() and not self._dirty.is_set() and self._ready.is_set():
                await self._publish_statuses()

    def _assigned_to_absent_nodes(self) -> bool:
        nodes = self.state.registry.nodes
        return any(
            (rec := nodes.get(a.node)) is None or rec.state != "online"
            for a in self.state.assignments
        )


async def _cancel_all(tasks: list[asyncio.Task[Any]], every_s: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until all have ended, cancelling again every ``every_s``.

    Cancelling once is not always enough on Python 3.11: ``asyncio.wait_for`` (used by
    aiomqtt for every QoS 1 publish) can swallow a cancellation that arrives as its inner
    future completes (fixed in 3.12), and a loop that swallowed it goes back to waiting
    for input that will never come. Asking again ends it at its next await.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)


async def _publish_all(
    session: Session, pubs: list[Publication], concurrency: int = MAX_INFLIGHT
) -> None:
    """Publish many QoS 1 messages with a bounded number in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one(pub: Publication) -> None:
        async with sem:
            await session.publish(pub)

    await asyncio.gather(*(one(p) for p in pubs))


async def run_until_signalled(config: OrchestratorConfig) -> None:
    """Run the service until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    orchestrator = Orchestrator(config)
    await orchestrator.run(stop)


__all__ = ["Desired", "Orchestrator", "OrchestratorConfig", "decode", "run_until_signalled"]
