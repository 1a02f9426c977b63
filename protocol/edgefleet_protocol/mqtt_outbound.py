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

Here packets are encoded directly (the MQTT 5 properties :func:`~.mqtt_client.publish_properties`
would set), up to a window of them are queued on paho's own output queue as one write (so
they stay in order with everything else paho sends), and the reader
(:mod:`.mqtt_inbound`) hands each PUBACK whose packet id is ours to :meth:`Outbound.acked`.

Invariants:

* Packet ids come from paho's own generator, so they never collide with paho's publishes.
* At most ``window`` of one batch's QoS 1 publishes await their PUBACK at once (the
  broker's receive maximum; :data:`~.mqtt_client.MAX_INFLIGHT`); a single publish waits
  while ``window`` of any kind await theirs.
* A single publish that times out stops waiting: its PUBACK, if it comes, is ignored.
* A lost connection fails every publish still waiting (:meth:`Outbound.lost`); nothing is
  resent on the next connection (callers are level-triggered and publish again).
* Relies on paho-mqtt 2.x internals (``_mid_generate``, ``_packet_queue``), pinned ``<3``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiomqtt

from edgefleet_protocol.wire import Publication

__all__ = ["NOT_SENT", "Outbound", "encode_publish"]

NOT_SENT = -1
"""The result of a publish the connection was lost before acknowledging."""

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

    async def publish_one(self, pub: Publication, *, timeout_s: float, window: int) -> int:
        """Publish one message; its result as :meth:`publish`'s, :data:`NOT_SENT` also when
        no PUBACK came within ``timeout_s`` (or no room under ``window`` within it)."""
        paho = self._paho
        try:
            async with asyncio.timeout(timeout_s):
                while len(self._waiting) >= window and not self._lost:
                    if self._room is None:
                        self._room = asyncio.get_running_loop().create_future()
                    await asyncio.shield(self._room)
                if self._lost or paho._sock is None:
                    return NOT_SENT
                if not pub.qos:
                    paho._packet_queue(0, encode_publish(pub, 0, self._v5), 0, 0)
                    return 0
                mid = paho._mid_generate()
                acked: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                self._waiting[mid] = acked
                paho._packet_queue(0, encode_publish(pub, mid, self._v5), 0, 0)
                try:
                    return await acked
                finally:
                    if self._waiting.get(mid) is acked:
                        del self._waiting[mid]  # timed out or cancelled: stop waiting
        except TimeoutError:
            return NOT_SENT

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
                paho._packet_queue(0, b"".join(chunk), 0, 0)  # command 0: no paho callbacks
            if batch.waiting == 0 and sent == len(pubs):
                break
            batch.woken.clear()
            await batch.woken.wait()
        return batch.results
