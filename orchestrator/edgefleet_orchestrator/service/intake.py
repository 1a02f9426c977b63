"""Command intake ahead of the handlers: per-client rate limit and fair queueing.

Who calls it: the orchestrator's inbound loop hands every command PUBLISH to
:meth:`CommandQueue.submit` and goes straight on to the next message, so node messages
never wait behind commands; one task (:meth:`CommandQueue.serve`) runs the queued commands
through :class:`~edgefleet_orchestrator.service.commands.CommandIntake`, one client at a
time in turn (round robin), so one operator's burst delays another's command by at most
one command of each busy client.

Why: 20,000 commands in under a second used to be run inline, each with its store
transaction and two QoS 1 publishes, and stalled node messages and every other operator for
about 45 s (issue #12 defect 7).

Invariants:

* :meth:`submit` never awaits the store or a handler; it parses at most the envelope.
* A client may have at most ``limit`` commands admitted per ``window_s`` and at most
  ``max_queued`` waiting. A command beyond either is not run: it is answered with
  ``rate_limited`` while the client's refusal-reply budget lasts (a flood is not echoed
  reply for reply), counted, and summarised once per window per client by the
  ``commands-refused`` event and one log line (:meth:`flush_summaries`, from the tick).
* Who a client is: the operator in the command topic (the broker user, bound by the ACL),
  else, for an accountless command, :func:`client_key`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from edgefleet_protocol import ProtocolError, encode
from edgefleet_protocol.commands import ErrorCode, error_reply, parse_envelope, resolve_reply_to
from edgefleet_protocol.events import COMMANDS_REFUSED
from edgefleet_protocol.limits import OTHERS, WindowLimiter
from edgefleet_protocol.session import InboundMessage, Publication, Session

from edgefleet_orchestrator.service.commands import CommandIntake
from edgefleet_orchestrator.service.config import IntakeLimits, ServiceStats
from edgefleet_orchestrator.service.events import EventPublisher

log = logging.getLogger("edgefleet.orchestrator")

NO_REPLY_TOPIC = "-"
"""The client key of commands that name no reply topic (they all share one limit)."""


def client_key(root: str, reply_to: str | None) -> str:
    """Who sent an *accountless* command (``commands/{verb}``, dev config), as far as the
    orchestrator can tell: the first level of its reply topic below ``<root>/replies/``. A
    command without a reply topic counts as :data:`NO_REPLY_TOPIC`. Commands on
    ``commands/{operator}/{verb}`` are keyed by that operator instead (:meth:`submit`)."""
    prefix = f"{root}/replies/"
    if reply_to is None or not reply_to.startswith(prefix):
        return NO_REPLY_TOPIC
    return reply_to[len(prefix) :].split("/", 1)[0][:64] or NO_REPLY_TOPIC


class CommandQueue:
    """Admits commands per client and runs them fairly; see the module docstring."""

    def __init__(
        self,
        *,
        root: str,
        session: Session,
        intake: CommandIntake,
        events: EventPublisher,
        stats: ServiceStats,
        clock: Callable[[], float],
        limits: IntakeLimits,
    ) -> None:
        self._root = root
        self._session = session
        self._intake = intake
        self._events = events
        self._stats = stats
        self._clock = clock
        self.limits = limits
        self._admitted = WindowLimiter(limits.limit, limits.window_s)
        self._replies = WindowLimiter(limits.refusal_replies, limits.window_s)
        self._queues: dict[str, deque[tuple[str, InboundMessage, str | None]]] = {}
        self._queued = 0
        self._refused: dict[str, int] = {}
        self._summarised_at = clock()
        self._wake = asyncio.Event()

    def pending(self) -> int:
        return self._queued

    async def submit(self, verb: str, message: InboundMessage, operator: str | None = None) -> None:
        """Queue one command, or refuse it when its client is over its limit. ``operator``:
        the sender named by the command topic (bound to the account by the broker ACL),
        which is then the client; ``None`` for an accountless command."""
        reply_to, request_id = self._reply_topic(message, operator)
        key = operator or client_key(self._root, reply_to)
        now = self._clock()
        queue = self._queues.get(key)
        if queue is not None and len(queue) >= self.limits.max_queued:
            why = f"more than {self.limits.max_queued} of your commands are waiting"
        elif self._queued >= self.limits.max_queued_total:
            why = f"more than {self.limits.max_queued_total} commands are waiting"
        elif not self._admitted.allow(key, now):
            why = f"more than {self.limits.limit} commands in {self.limits.window_s:g} s"
        else:
            self._queues.setdefault(key, deque()).append((verb, message, operator))
            self._queued += 1
            self._wake.set()
            return
        self._stats.commands_refused += 1
        if key not in self._refused and len(self._refused) >= self._admitted.max_keys:
            key = OTHERS
        self._refused[key] = self._refused.get(key, 0) + 1
        if reply_to is not None and self._replies.allow(key, now):
            reply = error_reply(
                request_id or "unknown",
                ErrorCode.RATE_LIMITED,
                f"not run: {why}; send it again later",
                verb=verb,
                details={"limit": self.limits.limit, "window_s": self.limits.window_s},
            )
            await self._session.publish(
                Publication(
                    topic=reply_to,
                    payload=encode(reply),
                    correlation_data=message.correlation_data,
                )
            )

    def _reply_topic(
        self, message: InboundMessage, operator: str | None
    ) -> tuple[str | None, str | None]:
        try:
            envelope = parse_envelope(message.payload)
            return resolve_reply_to(self._root, envelope, message.response_topic, operator), (
                envelope.request_id
            )
        except ProtocolError:
            return None, None

    async def serve(self) -> None:
        """Run queued commands forever, one client at a time in turn."""
        while True:
            while not self._queues:
                self._wake.clear()
                await self._wake.wait()
            key = next(iter(self._queues))
            queue = self._queues.pop(key)
            verb, message, operator = queue.popleft()
            self._queued -= 1
            if queue:
                self._queues[key] = queue  # to the back of the line: round robin
            try:
                await self._intake.command(verb, message, operator)
            except Exception:  # one command must never stop the intake
                log.exception("unexpected error running command %s", verb)

    async def flush_summaries(self) -> None:
        """Once per window: one event and one log line per client with refused commands."""
        now = self._clock()
        if now - self._summarised_at < self.limits.window_s:
            return
        self._summarised_at = now
        self._admitted.summaries(now)  # forget ended windows; the counts are ours
        self._replies.summaries(now)
        refused, self._refused = self._refused, {}
        for key, count in sorted(refused.items()):
            text = (
                f"refused {count} command(s) from client {key!r} in the last"
                f" {self.limits.window_s:g} s: over its limit of {self.limits.limit}"
                f" per {self.limits.window_s:g} s (or too many waiting)"
            )
            log.warning("%s", text)
            await self._events.event(
                "warning",
                COMMANDS_REFUSED,
                text,
                details={"client": key, "refused": count, "window_s": self.limits.window_s},
            )
