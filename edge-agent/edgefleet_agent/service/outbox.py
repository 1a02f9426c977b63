"""The node's events: published at once when connected, else kept (bounded) for the next connect.

An event raised while the broker is away must not be lost, and must not grow without bound
on a gateway that stays offline for weeks: the newest ``MAX_QUEUED_EVENTS`` wait here and
:meth:`EventOutbox.flush` sends them, oldest first, right after a (re)connect.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from edgefleet_protocol import Event
from edgefleet_protocol.events import EventKind, build_event
from edgefleet_protocol.node_messages import Level

log = logging.getLogger("edgefleet.agent")

MAX_QUEUED_EVENTS = 100


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

    def queue(self, level: Level, kind: str | EventKind, message: str, **details: object) -> Event:
        """Keep an event for the next connect (or for :meth:`emit` to send now)."""
        event = build_event(
            kind,
            message,
            ts=self._clock(),
            level=level,
            node=self._node,
            site=self._site,
            details=details,
        )
        self.queued.append(event)
        return event

    async def emit(
        self, level: Level, kind: str | EventKind, message: str, **details: object
    ) -> None:
        """Log and publish an event now, or keep it (bounded) until the next connect."""
        log.log(logging.WARNING if level in ("warning", "error") else logging.INFO,
                "%s: %s", getattr(kind, "name", kind), message)  # fmt: skip
        event = self.queue(level, kind, message, **details)
        if self._connected() and await self._send(event):
            with contextlib.suppress(ValueError):
                self.queued.remove(event)

    async def flush(self) -> None:
        """Send what queued while away, oldest first; stop at the first failed publish."""
        while self.queued:
            if not await self._send(self.queued[0]):
                break
            self.queued.popleft()
