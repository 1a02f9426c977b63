"""The session's bounded inbound queue, read one message or one batch at a time.

Who calls it: :class:`~edgefleet_protocol.session.Session` (the MQTT reader offers, the
owner's loop takes). Why not ``asyncio.Queue``: the reader runs inside a socket callback
and must never wait, a consumer that handles messages in batches takes everything waiting
in one call, and the bound must hold for QoS 1 as well (aiomqtt's own queue was
unbounded, so a flood of QoS 1 messages grew memory without limit).

Invariants:

* At most ``capacity`` messages wait, plus QoS 1 messages whose acknowledgement is held
  back: the broker sends a client no more unacknowledged QoS 1 messages than its in-flight
  window (mosquitto: 20), so those are bounded too.
* When full, a QoS 0 message (telemetry: the next one supersedes it) is dropped and
  counted by the caller; a QoS 1 message is queued and its PUBACK deferred until the
  queue is below capacity again.
* Messages come out in the order they were offered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Literal

from edgefleet_protocol.wire import InboundMessage

Offered = Literal["queued", "dropped", "deferred"]


class Inbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._messages: deque[InboundMessage] = deque()
        self._waiting = asyncio.Event()
        self._acks: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._messages)

    def offer(self, message: InboundMessage, ack: Callable[[], None] | None) -> Offered:
        """Queue ``message`` unless it is QoS 0 and the queue is full. ``ack`` sends its
        PUBACK (QoS 1); when the answer is ``deferred`` the inbox calls it later."""
        full = len(self._messages) >= self.capacity
        if full and message.qos == 0:
            return "dropped"
        self._messages.append(message)
        self._waiting.set()
        if full and ack is not None:
            self._acks.append(ack)
            return "deferred"
        return "queued"

    async def get(self) -> InboundMessage:
        while not self._messages:
            self._waiting.clear()
            await self._waiting.wait()
        message = self._messages.popleft()
        self._release()
        return message

    async def batch(self, limit: int) -> list[InboundMessage]:
        """Everything waiting (at most ``limit``), once at least one message is."""
        while not self._messages:
            self._waiting.clear()
            await self._waiting.wait()
        messages = self._messages
        if len(messages) <= limit:
            taken = list(messages)
            messages.clear()
        else:
            taken = [messages.popleft() for _ in range(limit)]
        self._release()
        return taken

    def _release(self) -> None:
        """Send the held-back PUBACKs once there is room again."""
        if self._acks and len(self._messages) < self.capacity:
            acks, self._acks = self._acks, []
            for ack in acks:
                ack()
