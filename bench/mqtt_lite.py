"""A minimal asyncio MQTT 3.1.1 client for benchmark fleets: thousands per process.

Who uses it: :mod:`bench.lite_fleet` (protocol-level fake nodes for convergence and fleet
size runs). It speaks plain MQTT through :mod:`bench.mqtt_wire`: CONNECT with a will,
SUBSCRIBE, PUBLISH at QoS 0/1 (acknowledging inbound QoS 1), PINGREQ, DISCONNECT.

Deliberately small: no reconnect, no outbound retry, no MQTT 5. A benchmark fleet that
loses its broker has already failed; the run reports that instead of a figure. Keepalive
pings are the owner's job (one fleet-wide timer instead of a timer per client).

Invariants: one :class:`asyncio.Protocol` per client; every callback runs on the loop that
created it; ``on_message`` must not block (it is called from ``data_received``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from bench import mqtt_wire as wire

OnMessage = Callable[[wire.Message], None]


class LiteError(RuntimeError):
    """The broker refused or dropped a benchmark client."""


class LiteClient(asyncio.Protocol):
    def __init__(
        self,
        client_id: str,
        *,
        keepalive: int = 120,
        will: wire.Will | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        self.client_id = client_id
        self.keepalive = keepalive
        self.will = will
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.Event()
        self.unacked = 0
        self._reader = wire.FrameReader()
        self._ids = itertools.cycle(range(1, 0x10000))
        self._connack: asyncio.Future[int] | None = None
        self._subacks: dict[int, asyncio.Future[None]] = {}

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for frame in self._reader.feed(data):
            kind = frame.kind
            if kind == wire.Packet.PUBLISH:
                message = wire.parse_publish(frame)
                if message.qos and self.transport is not None:
                    self.transport.write(wire.puback(message.packet_id))
                if self.on_message is not None:
                    self.on_message(message)
            elif kind == wire.Packet.PUBACK:
                self.unacked -= 1
            elif kind == wire.Packet.CONNACK:
                if self._connack is not None and not self._connack.done():
                    self._connack.set_result(wire.connack_code(frame))
            elif kind == wire.Packet.SUBACK:
                waiter = self._subacks.pop(wire.packet_id_of(frame), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost.set()
        failure = LiteError(f"{self.client_id}: connection lost ({exc or 'closed by broker'})")
        for waiter in [self._connack, *self._subacks.values()]:
            if waiter is not None and not waiter.done():
                waiter.set_exception(failure)

    # -- the client -----------------------------------------------------------------------

    async def connect(self, host: str, port: int, *, timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        async with asyncio.timeout(timeout_s):
            try:
                await loop.create_connection(lambda: self, host, port)
            except OSError as exc:
                raise LiteError(f"cannot reach the broker at {host}:{port}: {exc}") from None
            assert self.transport is not None
            self.transport.write(
                wire.connect(self.client_id, keepalive=self.keepalive, will=self.will)
            )
            code = await self._connack
        if code != 0:
            raise LiteError(f"{self.client_id}: broker refused the connection (code {code})")

    async def subscribe(self, filters: list[str], *, timeout_s: float = 30.0) -> None:
        packet_id = next(self._ids)
        waiter = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = waiter
        self._write(wire.subscribe(packet_id, filters))
        async with asyncio.timeout(timeout_s):
            await waiter

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Send without waiting; QoS 1 acknowledgements only count down :attr:`unacked`."""
        packet_id = next(self._ids) if qos else 0
        if qos:
            self.unacked += 1
        self._write(wire.publish(topic, payload, qos=qos, retain=retain, packet_id=packet_id))

    def ping(self) -> None:
        if self.transport is not None:
            self.transport.write(wire.PINGREQ)

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the will."""
        if self.transport is not None:
            self.transport.write(wire.DISCONNECT)
            self.transport.close()

    def abort(self) -> None:
        """Drop the socket without DISCONNECT: the broker publishes the will."""
        if self.transport is not None:
            self.transport.abort()

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            raise LiteError(f"{self.client_id}: not connected")
        self.transport.write(data)
