"""What the broker says about the simulated fleet: presence and announcements, per node.

The fleet simulator calls a node *ready* only when the broker has delivered, live, the
``online`` status of that very agent instance (its ``session`` and ``since``) followed by
its ``capabilities`` — what an orchestrator needs before it can place anything there. A
retained message left by an earlier run (same root, same node ids) never counts: retained
deliveries are skipped, and an older instance's status does not match. So "ready" is an
end-to-end fact, not a flag set inside this process.

:class:`PresenceWatch` is one extra MQTT session of the simulator process, subscribed to
every node's ``status`` and ``capabilities`` under the fleet's root. It also records the
last status of every node (``offline`` from a will included), for fault reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from edgefleet_protocol import NodeStatus, ProtocolError, TopicKind, Topics, decode
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Session


@dataclass(frozen=True, slots=True)
class Seen:
    state: str
    session: int
    since: float
    announced: bool = False
    """A live ``capabilities`` message arrived after this status."""


class PresenceWatch:
    def __init__(self, broker: BrokerSettings, root: str) -> None:
        self._topics = Topics(root)
        self._status_filter = self._topics.all_nodes(TopicKind.NODE_STATUS)
        self.session = Session(
            broker,
            client_id=f"edgefleet-sim-watch-{uuid.uuid4().hex[:10]}",
            subscriptions=[
                self._status_filter,
                self._topics.all_nodes(TopicKind.NODE_CAPABILITIES),
            ],
        )
        self.seen: dict[str, Seen] = {}
        self.expected: dict[str, tuple[int, float]] = {}
        self.ready: set[str] = set()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10.0) -> bool:
        """Connect and subscribe; ``False`` when the broker does not answer in time."""
        self.session.start()
        self._task = asyncio.create_task(self._read(), name="sim-presence-watch")
        return await self.session.wait_connected(timeout_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.session.close()

    def expect(self, node: str, session: int, since: float) -> None:
        """From now on ``node`` is ready once this agent instance is seen online."""
        self.expected[node] = (session, since)
        self._recheck(node)

    def forget(self, node: str) -> None:
        self.expected.pop(node, None)
        self.ready.discard(node)

    def _recheck(self, node: str) -> None:
        seen, expected = self.seen.get(node), self.expected.get(node)
        if (
            seen is not None
            and expected is not None
            and seen.announced
            and seen.state == "online"
            and (seen.session, seen.since) == expected
        ):
            self.ready.add(node)
        else:
            self.ready.discard(node)

    def state(self, node: str) -> str | None:
        seen = self.seen.get(node)
        return seen.state if seen is not None else None

    async def _read(self) -> None:
        async for message in self.session.messages():
            self.on_message(message)

    def on_message(self, message: InboundMessage) -> None:
        if message.retain:
            return  # left by an earlier run, or earlier in this one: proves nothing live
        try:
            parsed = self._topics.parse(message.topic)
        except ProtocolError:
            return
        node = parsed.node
        if node is None:
            return
        if parsed.kind is TopicKind.NODE_STATUS:
            try:
                status = decode(NodeStatus, message.payload)
            except ProtocolError:
                return
            self.seen[node] = Seen(status.state, status.session, status.since)
        elif parsed.kind is TopicKind.NODE_CAPABILITIES:
            seen = self.seen.get(node)
            if seen is not None and not seen.announced:
                self.seen[node] = Seen(seen.state, seen.session, seen.since, announced=True)
        self._recheck(node)
        self.changed.set()
