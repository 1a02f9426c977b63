"""The node's events: published at once when connected, else kept (bounded) for the next connect.

An event raised while the broker is away must not be lost, and must not grow without bound
on a gateway that stays offline for weeks: the newest ``MAX_QUEUED_EVENTS`` wait here and
:meth:`EventOutbox.flush` sends them, oldest first, right after a (re)connect.

A flood must not become an event or log flood either (a desired-topic flood once made
16,000 log lines, issue #12): per kind and workload (or refused field), the first
:data:`EVENTS_PER_WINDOW` events of every :data:`EVENT_WINDOW_S` are logged and published;
the rest are counted and
:meth:`EventOutbox.flush_summaries` reports them as one ``events-suppressed`` event and one
log line per window.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

from edgefleet_protocol import Event
from edgefleet_protocol.events import EVENTS_SUPPRESSED, EventKind, build_event
from edgefleet_protocol.limits import WindowLimiter
from edgefleet_protocol.node_messages import Level

log = logging.getLogger("edgefleet.agent")

MAX_QUEUED_EVENTS = 100
EVENTS_PER_WINDOW = 5
EVENT_WINDOW_S = 10.0


class EventOutbox:
    """Events of one node; ``send`` publishes one ``Event`` and says whether it went out."""

    def __init__(
        self,
        *,
        node: str,
        site: str,
        clock: Callable[[], float],
        send: Callable[[Event], Awaitable[bool]],
        connected: Callable[[], bool],
    ) -> None:
        self._node = node
        self._site = site
        self._clock = clock
        self._send = send
        self._connected = connected
        self.queued: deque[Event] = deque(maxlen=MAX_QUEUED_EVENTS)
        self._limiter = WindowLimiter(EVENTS_PER_WINDOW, EVENT_WINDOW_S, max_keys=200)

    def queue(self, level: Level, kind: str | EventKind, message: str, **details: object) -> Event:
        """Keep an event for the next connect."""
        event = self._build(level, kind, message, **details)
        self.queued.append(event)
        return event

    def _build(self, level: Level, kind: str | EventKind, message: str, **details: object) -> Event:
        return build_event(
            kind,
            message,
            ts=self._clock(),
            level=level,
            node=self._node,
            site=self._site,
            details=details,
        )

    async def emit(
        self, level: Level, kind: str | EventKind, message: str, **details: object
    ) -> None:
        """Log and publish an event now, or keep it (bounded) until the next connect;
        beyond its kind's limit per window, only count it (see the module docstring)."""
        await self.flush_summaries()
        name = getattr(kind, "name", kind)
        about = details.get("workload") or details.get("field") or ""
        if not self._limiter.allow(f"{name}:{about}", self._clock()):
            return
        log.log(logging.WARNING if level in ("warning", "error") else logging.INFO,
                "%s: %s", getattr(kind, "name", kind), message)  # fmt: skip
        # Queued only if it does not go out now: a flush running meanwhile (after a
        # reconnect) must not send it a second time.
        event = self._build(level, kind, message, **details)
        if not (self._connected() and await self._send(event)):
            self.queued.append(event)

    async def flush_summaries(self) -> None:
        """One log line and one ``events-suppressed`` event per kind (and workload) whose
        window with suppressed events has ended."""
        for key, count in self._limiter.summaries(self._clock()):
            kind, _, subject = key.partition(":")
            about = f" about {subject}" if subject else ""
            text = f"{count} more {kind} event(s){about} in {EVENT_WINDOW_S:g} s not sent"
            log.warning("%s", text)
            event = build_event(
                EVENTS_SUPPRESSED,
                text,
                ts=self._clock(),
                level="warning",
                node=self._node,
                site=self._site,
                details={"kind": kind, "suppressed": count, "window_s": EVENT_WINDOW_S},
            )
            if not (self._connected() and await self._send(event)):
                self.queued.append(event)

    async def flush(self) -> None:
        """Send what queued while away, oldest first; stop at the first failed publish.
        Each event leaves the queue before it is sent, so a concurrent flush (or emit)
        never sends it twice; a failed one goes back to the front."""
        while self.queued:
            event = self.queued.popleft()
            if not await self._send(event):
                self.queued.appendleft(event)
                break
