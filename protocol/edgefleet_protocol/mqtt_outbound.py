"""The outbound hot path: every publish of a :class:`~edgefleet_protocol.session.Session`.

Who calls it: :meth:`Session.publish_many <edgefleet_protocol.session.Session.publish_many>`
(the orchestrator's fan-out of desired documents and statuses) and :meth:`Session.publish
<edgefleet_protocol.session.Session.publish>` (one message with a timeout: every agent
report, event, telemetry and compliance message, every CLI command). Why: through aiomqtt each
publish costs a coroutine, a future, a paho ``MQTTMessageInfo`` (with a
``threading.Condition``), a ``Properties`` object, a packet built byte by byte and a write
wake-up of its own; 10,000 desired documents took 10-20 x what the broker needs to take
and deliver them (bench/outbound.py), and a real agent spent about half of its CPU time in
those publishes (``bench.fleet_profiled``, 2026-12-06b-vm-fleet-size-agents.md).

Here packets are encoded directly (the MQTT 5 properties paho's ``Properties`` would carry),
every packet queued in one turn of the event loop goes out in one ``send`` straight to the
socket when paho has nothing queued ahead of it (else behind paho's own output queue, so
nothing overtakes what paho sends; a partial send's rest is queued there too), and the reader
(:mod:`.mqtt_inbound`) hands each PUBACK whose packet id is ours to :meth:`Outbound.acked`.

Invariants:

* Packet ids come from paho's own generator, so they never collide with paho's publishes.
* At most ``window`` of one batch's QoS 1 publishes await their PUBACK at once (the
  broker's receive maximum; :data:`~.mqtt_client.MAX_INFLIGHT`); a single publish waits
  while ``window`` of any kind await theirs.
* A single publish that gets no PUBACK within ``timeout_s`` (at the earliest; at the
  latest when the publishes queued before it have timed out) fails; its PUBACK, if it
  comes later, is ignored.
* A lost connection fails every publish still waiting (:meth:`Outbound.lost`); nothing is
  resent on the next connection (callers are level-triggered and publish again).
* Relies on paho-mqtt 2.x internals (``_mid_generate``, ``_packet_queue``, ``_out_packet``,
  ``_sock_send``, ``_last_msg_out``), pinned ``<3``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import aiomqtt
import paho.mqtt.client as paho_client

from edgefleet_protocol.wire import Publication

__all__ = ["NOT_SENT", "PUBLISH_TIMEOUT_S", "Outbound", "encode_publish"]

NOT_SENT = -1
"""The result of a publish the connection was lost (or timed out) before acknowledging."""

PUBLISH_TIMEOUT_S = 10.0
"""A single publish's wait for its PUBACK, as aiomqtt's ``publish(timeout=10)`` was."""

_JSON = b"application/json"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_publish(pub: Publication, mid: int, v5: bool) -> bytes:
    """One PUBLISH packet, with the MQTT 5 properties the session sets on every publish
    (content type and payload format for a payload, expiry, correlation data)."""
    topic = pub.topic.encode()
    head = len(topic).to_bytes(2, "big") + topic
    if pub.qos:
        head += mid.to_bytes(2, "big")
    if v5:
        props = b""
        if pub.payload:
            props += b"\x01\x01\x03" + len(_JSON).to_bytes(2, "big") + _JSON
        if pub.expiry_s is not None:
            props += b"\x02" + pub.expiry_s.to_bytes(4, "big")
        if pub.correlation_data is not None:
            data = pub.correlation_data
            props += b"\x09" + len(data).to_bytes(2, "big") + data
        head += _varint(len(props)) + props
    first = 0x30 | (pub.qos << 1) | int(pub.retain)
    return bytes([first]) + _varint(len(head) + len(pub.payload)) + head + pub.payload


class _Batch:
    def __init__(self, size: int) -> None:
        self.results = [NOT_SENT] * size
        self.waiting = 0
        self.woken = asyncio.Event()


class Outbound:
    """Publishing on one connection (see the module docstring)."""

    def __init__(self, client: aiomqtt.Client, *, v5: bool) -> None:
        self._paho = client._client
        self._v5 = v5
        self._waiting: dict[int, tuple[_Batch, int] | asyncio.Future[int]] = {}
        self._room: asyncio.Future[None] | None = None  # single publishes waiting for room
        self._lost = False
        self._loop = client._loop
        self._unsent: list[bytes] = []
        self.timeout_s = PUBLISH_TIMEOUT_S
        """How long a single publish waits for its PUBACK (and for room under its window)."""
        self._expiry: deque[tuple[float, int, asyncio.Future[int]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    def puback(self, mid: int) -> None:
        """Acknowledge an inbound QoS 1 message (the bytes paho's ``_send_puback`` sends)."""
        self._write(b"\x40\x02" + mid.to_bytes(2, "big"))

    def _write(self, packet: bytes) -> None:
        """Queue ``packet``: all queued in this turn of the loop go out in one send."""
        self._unsent.append(packet)
        if len(self._unsent) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        data = b"".join(self._unsent)
        self._unsent.clear()
        paho = self._paho
        if paho._sock is None:
            return  # the connection is gone: lost() fails what waits
        sent = 0
        if not paho._out_packet:  # nothing of paho's ahead: straight to the socket
            try:
                sent = paho._sock_send(data)
            except OSError:  # would block (BlockingIOError), or broken: paho's writer decides
                sent = 0
            with paho._msgtime_mutex:
                paho._last_msg_out = paho_client.time_func()  # keepalive: we just wrote
        if sent < len(data):
            paho._packet_queue(0, data[sent:], 0, 0)  # command 0: no paho callbacks

    def acked(self, body: bytes) -> bool:
        """A PUBACK (``body`` after the fixed header): ``True`` if it was one of ours."""
        mid = int.from_bytes(body[0:2], "big")
        entry = self._waiting.pop(mid, None)
        if entry is None:
            return False
        reason = body[2] if self._v5 and len(body) > 2 else 0
        code = reason if reason >= 0x80 else 0  # 0x10: no subscribers, taken
        if isinstance(entry, asyncio.Future):
            if not entry.done():
                entry.set_result(code)
        else:
            batch, index = entry
            batch.results[index] = code
            batch.waiting -= 1
            batch.woken.set()
        self._make_room()
        return True

    def lost(self) -> None:
        """The connection ended: every publish still waiting failed."""
        self._lost = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._expiry.clear()
        entries = list(self._waiting.values())
        self._waiting.clear()
        for entry in entries:
            if isinstance(entry, asyncio.Future):
                if not entry.done():
                    entry.set_result(NOT_SENT)
            else:
                entry[0].waiting = 0
                entry[0].woken.set()
        self._make_room()

    def _make_room(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    async def publish_one(self, pub: Publication, *, window: int) -> int:
        """Publish one message; its result as :meth:`publish`'s, :data:`NOT_SENT` also when
        no PUBACK came within :attr:`timeout_s` (or no room under ``window`` within it)."""
        paho = self._paho
        if len(self._waiting) >= window and not await self._room_under(window):
            return NOT_SENT
        if self._lost or paho._sock is None:
            return NOT_SENT
        if not pub.qos:
            self._write(encode_publish(pub, 0, self._v5))
            return 0
        mid = paho._mid_generate()
        acked: asyncio.Future[int] = self._loop.create_future()
        self._waiting[mid] = acked
        self._expiry.append((self._loop.time() + self.timeout_s, mid, acked))
        if self._sweeper is None:
            self._sweeper = self._loop.call_at(self._expiry[0][0], self._sweep)
        self._write(encode_publish(pub, mid, self._v5))
        try:
            return await acked
        finally:
            if self._waiting.get(mid) is acked:
                del self._waiting[mid]  # cancelled: stop waiting

    async def _room_under(self, window: int) -> bool:
        try:
            async with asyncio.timeout(self.timeout_s):
                while len(self._waiting) >= window and not self._lost:
                    if self._room is None:
                        self._room = self._loop.create_future()
                    await asyncio.shield(self._room)
        except TimeoutError:
            return False
        return True

    def _sweep(self) -> None:
        """Fail the single publishes past their deadline. One timer per connection, armed
        at the oldest deadline, instead of one per publish (``asyncio.timeout``: a timer
        handle in the loop's heap per message, a tenth of an agent's publishing cost)."""
        self._sweeper = None
        now = self._loop.time()
        expiry = self._expiry
        while expiry and (expiry[0][2].done() or expiry[0][0] <= now):
            _, mid, acked = expiry.popleft()
            if not acked.done():
                acked.set_result(NOT_SENT)
                if self._waiting.get(mid) is acked:
                    del self._waiting[mid]
                self._make_room()
        if expiry:
            self._sweeper = self._loop.call_at(expiry[0][0], self._sweep)

    async def publish(self, pubs: Sequence[Publication], window: int) -> list[int]:
        """Publish ``pubs`` in order; each result is 0 (taken; for QoS 0: queued), the
        PUBACK's failure reason code (0x80 and up), or :data:`NOT_SENT`."""
        batch = _Batch(len(pubs))
        paho = self._paho
        sent = 0
        while not self._lost and paho._sock is not None:
            chunk = []
            while sent < len(pubs) and batch.waiting < window:
                pub = pubs[sent]
                mid = paho._mid_generate() if pub.qos else 0
                chunk.append(encode_publish(pub, mid, self._v5))
                if pub.qos:
                    self._waiting[mid] = (batch, sent)
                    batch.waiting += 1
                else:
                    batch.results[sent] = 0
                sent += 1
            if chunk:
                self._write(b"".join(chunk))
            if batch.waiting == 0 and sent == len(pubs):
                break
            batch.woken.clear()
            await batch.woken.wait()
        return batch.results
