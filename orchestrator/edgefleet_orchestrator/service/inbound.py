"""The orchestrator's inbound message path: one batch of messages at a time.

Who calls it: :meth:`Orchestrator._consume
<edgefleet_orchestrator.service.orchestrator.Orchestrator._consume>` hands it every batch
the session has waiting (:meth:`~edgefleet_protocol.session.Session.batch`).

Why batches: under load most messages are telemetry of the same few thousand nodes, and
applying each to the registry (a frozen record replaced per message) cost more than
everything else per message. Every telemetry message is still decoded, validated and
checked against its topic one by one (refused exactly as before, with the same event),
but the accepted ones are merged per node and the node's record is updated once per run.

Invariants:

* Messages take effect in arrival order: held telemetry is applied before any other
  message is handled, so a status or report never overtakes the telemetry before it.
* Only live (not retained) telemetry is held; everything else goes through
  :meth:`Inbound.dispatch` one by one, as before.
* One message (or one node's held telemetry) that raises never stops the batch: it is
  logged and reported as an internal error, as before.
* The events a batch makes (node lifecycle, rejections) are published together when the
  batch ends, pipelined (:meth:`EventPublisher.hold
  <edgefleet_orchestrator.service.events.EventPublisher.hold>`): the batch never waits on
  one broker round trip per event.
* Parsed topics are cached (valid ones only, at most :data:`TOPIC_CACHE` entries), so a
  flood of distinct bad topics cannot grow it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from edgefleet_protocol import (
    ParsedTopic,
    ProtocolError,
    Telemetry,
    TopicKind,
    Topics,
    decode_for_kind,
)
from edgefleet_protocol.codec import decode_fast
from edgefleet_protocol.session import InboundMessage

from edgefleet_orchestrator.fleet.records import IngestResult
from edgefleet_orchestrator.service.config import ServiceStats
from edgefleet_orchestrator.service.events import EventPublisher
from edgefleet_orchestrator.service.intake import CommandQueue
from edgefleet_orchestrator.service.presence import Presence, RivalOrchestrator
from edgefleet_orchestrator.service.state import ControlState

log = logging.getLogger("edgefleet.orchestrator")

TOPIC_CACHE = 65_536


class Host(Protocol):
    """What the path needs of the orchestrator (which passes itself)."""

    topics: Topics
    stats: ServiceStats
    events: EventPublisher
    presence: Presence
    intake: CommandQueue
    state: ControlState
    clock: Callable[[], float]

    async def note_ingest(self, result: IngestResult) -> None: ...


class Inbound:
    def __init__(self, orch: Host) -> None:
        self._orch = orch
        self._topics: dict[str, ParsedTopic] = {}
        self._held: dict[str, tuple[str, list[Telemetry]]] = {}  # node -> (site, messages)

    def parse(self, topic: str) -> ParsedTopic:
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = self._orch.topics.parse(topic)  # raises ProtocolError: not cached
            if len(self._topics) >= TOPIC_CACHE:
                self._topics.clear()
            self._topics[topic] = parsed
        return parsed

    async def handle(self, batch: list[InboundMessage]) -> None:
        stats = self._orch.stats
        events = self._orch.events
        events.hold()  # the batch's events go out together at its end (EventPublisher)
        try:
            for message in batch:
                stats.messages += 1
                try:
                    if not await self._hold(message):
                        await self.flush()
                        await self.dispatch(message)
                except RivalOrchestrator:
                    raise  # the one thing that stops us: another orchestrator serves this broker
                except Exception:  # one message must never stop the loop
                    await self._internal_error(message.topic)
            await self.flush()
        finally:
            await events.release()

    async def _internal_error(self, topic: str) -> None:
        log.exception("unexpected error handling %s", topic)
        await self._orch.events.reject(
            topic, "internal error while handling the message", why="internal"
        )

    async def _hold(self, message: InboundMessage) -> bool:
        """Take a live telemetry message (validated, checked) into the held batch, or
        refuse it; ``False`` for any other message (the caller dispatches it)."""
        if message.retain or not message.payload or not message.topic.endswith("/telemetry"):
            return False
        try:
            parsed = self.parse(message.topic)
        except ProtocolError:
            return False  # dispatch reports it
        if parsed.kind is not TopicKind.NODE_TELEMETRY:
            return False
        orch = self._orch
        orch.stats.received_by_kind["telemetry"] = (
            orch.stats.received_by_kind.get("telemetry", 0) + 1
        )
        site, node = parsed.site, parsed.node
        assert site is not None and node is not None
        try:
            model = decode_fast(Telemetry, message.payload)
        except ProtocolError as exc:
            await orch.events.reject(message.topic, str(exc), node=node)
            return True
        held = self._held.get(node)
        if held is not None and held[0] != site:
            await self.flush()  # the first one decides which site the node is under
            held = None
        rejection = orch.state.registry.rejection(parsed.kind, site, node, model)
        if rejection is not None:
            await orch.events.reject(message.topic, rejection, node=node, why="refused")
            return True
        if held is None:
            self._held[node] = (site, [model])
        else:
            held[1].append(model)
        return True

    async def flush(self) -> None:
        """Apply the held telemetry, one registry update per node."""
        if not self._held:
            return
        held, self._held = self._held, {}
        orch = self._orch
        now = orch.clock()
        for node, (site, messages) in held.items():
            try:
                result = orch.state.registry.ingest_telemetry(site, node, messages, now)
                await self.after_ingest(site, node, result)
            except Exception:  # one node's telemetry must never stop the loop
                await self._internal_error(orch.topics.node_telemetry(site, node))

    async def dispatch(self, message: InboundMessage) -> None:
        """Any message, one by one (commands, status, capabilities, reports, presence)."""
        orch = self._orch
        counts = orch.stats.received_by_kind
        try:
            parsed = self.parse(message.topic)
        except ProtocolError as exc:
            counts["unknown"] = counts.get("unknown", 0) + 1
            await orch.events.reject(message.topic, str(exc), why="topic")
            return
        counts[parsed.kind.value] = counts.get(parsed.kind.value, 0) + 1
        if parsed.kind is TopicKind.ORCHESTRATOR_STATUS:
            await orch.presence.on_status(message)
            return
        if parsed.kind is TopicKind.COMMAND:
            if message.retain:
                await orch.events.reject(
                    message.topic,
                    "retained command ignored: commands are never retained",
                    why="retained-command",
                )
                return
            await orch.intake.submit(parsed.verb or "", message, parsed.operator)
            return
        if parsed.kind in (TopicKind.NODE_DESIRED, TopicKind.NODE_EVENTS, TopicKind.NODE_LOGS):
            return  # our own output, agents' events (audit only), operators' logs requests
        if not message.payload:
            return  # a cleared retained message
        assert parsed.site is not None
        assert parsed.node is not None
        try:
            model = decode_for_kind(parsed.kind, message.payload)
        except ProtocolError as exc:
            await orch.events.reject(message.topic, str(exc), node=parsed.node)
            return
        result = orch.state.registry.ingest(
            parsed.kind, parsed.site, parsed.node, model, orch.clock(), retained=message.retain
        )
        if result.rejection:
            await orch.events.reject(
                message.topic, result.rejection, node=parsed.node, why="refused"
            )
            return
        await self.after_ingest(parsed.site, parsed.node, result)

    async def after_ingest(self, site: str, node: str, result: IngestResult) -> None:
        """Events and dirty flags of what a node message did to the registry."""
        orch = self._orch
        if result.event:
            await orch.events.event("info", "node", result.event, node=node, site=site)
        if result.broker_event:
            await orch.events.event("warning", "broker", result.broker_event)
        await orch.note_ingest(result)
