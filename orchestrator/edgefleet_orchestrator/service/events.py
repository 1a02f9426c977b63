"""What the orchestrator says on ``orchestrator/events``: decisions, node changes, command
results and rejected messages, the last rate-limited so a hostile flood never becomes an
event flood. Also the one helper that publishes many QoS 1 messages at once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from edgefleet_protocol import Event, TopicKind, Topics
from edgefleet_protocol.events import (
    COMMAND,
    DOCUMENT_WITHHELD,
    MESSAGE_REJECTED,
    NODE_ISOLATED,
    NODE_RELEASED,
    REJECTIONS_SUPPRESSED,
    EventKind,
    build_event,
)
from edgefleet_protocol.limits import WindowLimiter
from edgefleet_protocol.session import MAX_INFLIGHT, Publication, Session

from edgefleet_orchestrator.reconcile.isolation import Isolation
from edgefleet_orchestrator.reconcile.sizes import DOCUMENT_LIMIT_BYTES, too_large
from edgefleet_orchestrator.service.config import ServiceStats
from edgefleet_orchestrator.store.base import AuditEntry

log = logging.getLogger("edgefleet.orchestrator")

Level = Literal["debug", "info", "warning", "error"]

REJECTIONS_PER_SOURCE = 5
REJECTION_WINDOW_S = 10.0
"""Per node (and once for all messages that name no node): the first
``REJECTIONS_PER_SOURCE`` invalid messages of every ``REJECTION_WINDOW_S`` are logged and
reported one by one; the rest are counted and summarised once per window
(``rejections-suppressed``), so a flood costs one log line and one event per window."""

NO_NODE = "-"

Invalid = Literal["topic", "payload", "retained-command", "refused", "internal"]
"""Why a message was dropped, as a closed set (the metrics' ``reason`` label): a topic that
is not ours, a payload that does not decode, a retained command, a message the registry
refused (an older session, another node's id), or an internal error while handling it."""


class EventBudget:
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


class EventPublisher:
    """Publishes the orchestrator's events; counts and rate-limits rejections.

    Between :meth:`hold` and :meth:`release` (the inbound path brackets each batch of node
    messages so) events are kept in order and then published together, up to
    ``MAX_INFLIGHT`` awaiting their PUBACK at once, instead of one broker round trip each:
    a connect storm of 10,000 nodes is 10,000 ``node ... is online`` events, and awaiting
    each one's PUBACK held the whole inbound path to the broker's round trip (10,000 nodes
    took 58 s to be seen online on a loaded 2-core machine, the orchestrator idle two
    thirds of it). Held events are bounded by the batch: a batch is at most 10,000
    messages, each making at most two events, and rejections are rate-limited.
    """

    def __init__(
        self,
        session: Session,
        topics: Topics,
        stats: ServiceStats,
        *,
        max_rejections_per_s: float,
        clock: Callable[[], float],
        recent: deque[Event] | None = None,
    ) -> None:
        self._session = session
        self._recent = recent
        self._topics = topics
        self._stats = stats
        self._clock = clock
        self._budget = EventBudget(max_rejections_per_s, clock)
        self._per_source = WindowLimiter(REJECTIONS_PER_SOURCE, REJECTION_WINDOW_S)
        self._held: list[Publication] | None = None

    def hold(self) -> None:
        """Keep events (from any task) until :meth:`release`, in order."""
        if self._held is None:
            self._held = []

    async def release(self) -> None:
        """Publish the held events in order, pipelined; events publish one by one again."""
        held, self._held = self._held, None
        if held:
            await self._session.publish_many(held)

    async def event(
        self,
        level: Level,
        kind: str | EventKind,
        message: str,
        *,
        node: str | None = None,
        site: str | None = None,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        event = build_event(
            kind,
            message,
            ts=self._clock(),
            level=level,
            node=node,
            site=site,
            app=app,
            details=details,
        )
        if self._recent is not None:
            self._recent.append(event)  # what the ``events`` verb answers
        pub = Publication.of(
            TopicKind.ORCHESTRATOR_EVENTS, self._topics.orchestrator_events(), event
        )
        if self._held is not None:
            self._held.append(pub)
            return
        await self._session.publish(pub)

    async def reject(
        self, topic: str, reason: str, *, node: str | None = None, why: Invalid = "payload"
    ) -> None:
        """A dropped message: counted by reason, logged, and reported while the budget lasts."""
        stats = self._stats
        stats.rejected += 1
        stats.invalid_by_reason[why] = stats.invalid_by_reason.get(why, 0) + 1
        key = reason.split(":")[0][:80]
        stats.rejections_by_reason[key] = stats.rejections_by_reason.get(key, 0) + 1
        if not self._per_source.allow(node or NO_NODE, self._clock()):
            return  # counted above; summarised by flush_summaries()
        log.info("dropped message on %s: %s", topic[:200], reason)
        if self._budget.take():
            await self.event(
                "warning",
                MESSAGE_REJECTED,
                f"dropped message on {topic[:200]}: {reason}",
                details={"topic": topic[:512], "reason": reason},
            )

    async def isolations(self, started: list[Isolation], released: list[Isolation]) -> None:
        """Nodes a pass left out of scheduling (see reconcile.isolation), and released."""
        for iso in started:
            log.warning("node %s isolated: %s", iso.node, iso.reason)
            await self.event(
                "warning",
                NODE_ISOLATED,
                f"node {iso.node} is left out of scheduling (treated as offline): {iso.reason}",
                node=iso.node,
                site=iso.site,
                details={"reason": iso.reason, "since": iso.since},
            )
        for iso in released:
            await self.event(
                "info",
                NODE_RELEASED,
                f"node {iso.node} is scheduled again: its data is usable",
                node=iso.node,
                site=iso.site,
            )

    async def flush_summaries(self) -> None:
        """One log line and one event for every node whose window of suppressed invalid
        messages ended (called from the orchestrator's tick)."""
        for source, count in self._per_source.summaries(self._clock()):
            who = "messages naming no node" if source == NO_NODE else f"node {source}"
            text = (
                f"dropped {count} more invalid message(s) from {who} in {REJECTION_WINDOW_S:g} s"
                f" without reporting each (the first {REJECTIONS_PER_SOURCE} were)"
            )
            log.warning("%s", text)
            await self.event(
                "warning",
                REJECTIONS_SUPPRESSED,
                text,
                node=None if source == NO_NODE or source.startswith("*") else source,
                details={"source": source, "suppressed": count, "window_s": REJECTION_WINDOW_S},
            )

    async def audit(self, entry: AuditEntry) -> None:
        """Every command's outcome also goes to ``orchestrator/events`` (the audit trail):
        who, verb, target, result and time — never the reply, whose result and error
        message can quote payload values (a manifest's ``env``) that viewers must not read."""
        target = f" {entry.target_kind} {entry.target}" if entry.target else ""
        await self.event(
            "info" if entry.ok else "warning",
            COMMAND,
            f"{entry.operator}: {entry.verb}{target}: {entry.result}",
            app=entry.target if entry.target_kind == "app" else None,
            node=entry.target if entry.target_kind == "node" else None,
            details=entry.as_details(),
        )


async def publish_documents(
    session: Session, events: EventPublisher, docs: list[Publication]
) -> int:
    """Publish desired documents, withholding (with an error event) any an agent would
    refuse as too large (reconcile.sizes): the deploy and scale checks keep them from
    arising, but a stored one from an older version, or a node that took over replicas
    after a loss, must never reach the broker. Returns how many were published."""
    sendable = []
    for pub in docs:
        if not too_large(pub.payload):
            sendable.append(pub)
            continue
        text = (
            f"desired document for {pub.topic} withheld: {len(pub.payload)} bytes is over the"
            f" agents' limit of {DOCUMENT_LIMIT_BYTES}; the node keeps its previous document"
        )
        log.error("%s", text)
        await events.event(
            "error",
            DOCUMENT_WITHHELD,
            text,
            details={"topic": pub.topic, "bytes": len(pub.payload), "limit": DOCUMENT_LIMIT_BYTES},
        )
    await publish_all(session, sendable)
    return len(sendable)


async def publish_all(
    session: Session, pubs: list[Publication], concurrency: int = MAX_INFLIGHT
) -> None:
    """Publish many QoS 1 messages in order, at most ``concurrency`` awaiting their PUBACK
    (:meth:`Session.publish_many`)."""
    await session.publish_many(pubs, concurrency)
