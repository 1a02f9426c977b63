"""The inbound hot path: MQTT packets from the socket to :class:`InboundMessage` batches.

Who calls it: :mod:`edgefleet_protocol.session` installs it on every aiomqtt client it
makes (:func:`install`). Why it exists: the orchestrator reached 0.02-0.05 x a bare paho
subscriber on the same traffic (bench/results), and the profile put most of that in the
client stack, not in edgefleet: paho reads a packet with three or more ``recv`` calls and
one event-loop wake-up each, builds an ``MQTTMessage`` (with a ``threading.Condition``),
parses MQTT 5 properties into a ``Properties`` object with a dozen attributes, matches the
topic against its callback table, and aiomqtt then copies it into its own ``Message``,
an unbounded ``asyncio.Queue`` and a task per ``__anext__``.

Here one read callback (on the asyncio loop, as aiomqtt's) reads the socket in 64 KiB
chunks, frames packets itself, and turns each PUBLISH straight into an
:class:`InboundMessage` (:func:`parse_publish`: the two MQTT 5 properties edgefleet reads,
Response Topic and Correlation Data, and nothing else built) handed to a ``sink``. Every
other packet (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT) and any PUBLISH this parser
does not take on (QoS 2, a property it does not know, a topic that is not UTF-8) goes to
paho's own handler unchanged, so connection state, acknowledgements of our publishes and
keepalive stay paho's. aiomqtt still owns connect, subscribe, publish and disconnect.

Invariants:

* Bytes are handled in arrival order; a PUBLISH reaches the sink exactly once.
* ``sink(message, mid)`` returns whether a QoS 1 message may be acknowledged now; when it
  says no, the PUBACK waits for :func:`acknowledge` (the broker's in-flight window then
  holds back further QoS 1 deliveries: bounded memory under a flood).
* One wake-up stops reading once it has read :data:`MAX_READ_BYTES` (it may end inside
  its last 64 KiB chunk, so at most one chunk more), then yields to the loop.
* Relies on paho-mqtt 2.x internals (``_in_packet``, ``_packet_handle``,
  ``_loop_rc_handle``, ``_send_puback``), pinned ``<3`` in pyproject.toml; the session
  tests exercise every one of them against a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

from edgefleet_protocol.mqtt_outbound import Outbound
from edgefleet_protocol.wire import InboundMessage

__all__ = [
    "MAX_READ_BYTES",
    "Sink",
    "acknowledge",
    "install",
    "parse_publish",
    "until_disconnected",
]

Sink = Callable[[InboundMessage, int], bool]
"""``(message, mid) -> ack_now``; ``mid`` is 0 for QoS 0."""

READ_CHUNK = 65536
MAX_READ_BYTES = 1 << 20
"""Bytes read per wake-up before other tasks get a turn (about 4,000 telemetry messages)."""

_PUBLISH, _PUBACK = 0x30, 0x40
_FIXED = {1: 1, 2: 4, 35: 2}  # payload format, message expiry, topic alias: fixed sizes
_CONTENT_TYPE, _RESPONSE_TOPIC, _CORRELATION, _SUB_ID, _USER_PROPERTY = 3, 8, 9, 11, 38


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("variable byte integer longer than 4 bytes")


def _properties(data: bytes, pos: int, end: int) -> tuple[str | None, bytes | None] | None:
    """Response Topic and Correlation Data of a PUBLISH's property block, or ``None`` for
    anything this parser leaves to paho (an unknown or malformed property)."""
    response: str | None = None
    correlation: bytes | None = None
    while pos < end:
        ident = data[pos]
        pos += 1
        if ident in _FIXED:
            pos += _FIXED[ident]
        elif ident == _SUB_ID:
            _, pos = _varint(data, pos)
        elif ident in (_CONTENT_TYPE, _RESPONSE_TOPIC, _CORRELATION, _USER_PROPERTY):
            for _ in range(2 if ident == _USER_PROPERTY else 1):
                size = int.from_bytes(data[pos : pos + 2], "big")
                value = data[pos + 2 : pos + 2 + size]
                pos += 2 + size
                if ident == _RESPONSE_TOPIC:
                    response = value.decode("utf-8")
                elif ident == _CORRELATION:
                    correlation = bytes(value)
        else:
            return None
    return (response, correlation) if pos == end else None


def parse_publish(header: int, body: bytes, v5: bool) -> tuple[InboundMessage, int] | None:
    """A PUBLISH packet (first byte ``header``, ``body`` after the remaining length) as an
    :class:`InboundMessage` and its packet id, or ``None`` when paho must handle it (QoS 2,
    a topic that is not UTF-8, an empty topic, an unknown property, a malformed packet)."""
    qos = (header >> 1) & 0x03
    if qos > 1:
        return None
    try:
        size = int.from_bytes(body[0:2], "big")
        pos = 2 + size
        if size == 0 or pos > len(body):
            return None
        topic = body[2:pos].decode("utf-8")
        mid = 0
        if qos:
            mid = int.from_bytes(body[pos : pos + 2], "big")
            pos += 2
        response = correlation = None
        if v5:
            length, start = _varint(body, pos)
            pos = start + length
            if pos > len(body):
                return None
            props = _properties(body, start, pos)
            if props is None:
                return None
            response, correlation = props
    except (UnicodeDecodeError, IndexError, ValueError):
        return None
    message = InboundMessage(topic, bytes(body[pos:]), qos, bool(header & 0x01), response,
                             correlation)  # fmt: skip
    return message, mid


def acknowledge(client: aiomqtt.Client, mid: int) -> None:
    """Send the PUBACK a sink deferred (on the connection that delivered the message)."""
    paho = client._client
    if paho._sock is not None:
        paho._send_puback(mid)


async def until_disconnected(client: aiomqtt.Client) -> None:
    """Wait until ``client``'s connection ends, then raise the :class:`aiomqtt.MqttError`
    aiomqtt's message iterator raised (the reader delivers messages meanwhile)."""
    lost = client._disconnected
    await asyncio.wait([lost])
    cause = lost.exception()
    raise aiomqtt.MqttError("Disconnected during message iteration") from cause


def install(
    client: aiomqtt.Client, sink: Sink, *, v5: bool, outbound: Outbound | None = None
) -> None:
    """Route ``client``'s inbound packets through :class:`_Reader` once its socket opens."""
    paho = client._client
    opened = paho.on_socket_open
    loop = client._loop

    def on_message(_c: Any, _u: Any, message: paho_client.MQTTMessage) -> None:
        # The packets parse_publish leaves to paho arrive here (paho acknowledges them).
        sink(_from_paho(message), 0)

    def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
        if opened is not None:
            opened(c, userdata, sock)  # aiomqtt's reader and keepalive task
        reader = _Reader(client, sink, v5=v5, outbound=outbound)
        fd = sock.fileno()

        def start_reading() -> None:
            # A link reset during the CONNECT lets paho close the socket (in the connect
            # thread) before this runs: add_reader on the closed fd raised EBADF, which
            # asyncio logged at ERROR for an expected disconnect (issue #13 item 5).
            if paho._sock is sock:
                with contextlib.suppress(OSError, ValueError):
                    loop.add_reader(fd, reader.readable)

        # After aiomqtt's add_reader (call_soon_threadsafe is FIFO): replaces its callback.
        loop.call_soon_threadsafe(start_reading)

    def on_socket_register_write(c: Any, _u: Any, sock: Any) -> None:
        # aiomqtt's, guarded: a write queued just before the reader found the connection
        # closed (a PUBACK for the last message, a publish) scheduled add_writer on a
        # socket closed by the time it ran, and asyncio logged EBADF at ERROR.
        def write() -> None:
            try:
                c.loop_write()
            except Exception as exc:  # as aiomqtt's: a broken write ends the connection
                if not client._disconnected.done():
                    client._disconnected.set_exception(exc)

        fd = sock.fileno()

        def start_writing() -> None:
            if paho._sock is sock:
                with contextlib.suppress(OSError, ValueError):
                    loop.add_writer(fd, write)

        loop.call_soon_threadsafe(start_writing)

    paho.on_message = on_message
    paho.on_socket_open = on_socket_open
    paho.on_socket_register_write = on_socket_register_write


class _Reader:
    """Frames packets from the socket for one connection (see the module docstring)."""

    def __init__(
        self, client: aiomqtt.Client, sink: Sink, *, v5: bool, outbound: Outbound | None
    ) -> None:
        self._outbound = outbound
        self._client = client
        self._paho = client._client
        self._sink = sink
        self._v5 = v5
        self._buffer = b""
        self._scheduled = False

    def readable(self) -> None:
        self._scheduled = False
        try:
            self._read()
        except Exception as exc:  # as aiomqtt's reader: a broken read ends the connection
            if not self._client._disconnected.done():
                self._client._disconnected.set_exception(exc)

    def _read(self) -> None:
        paho = self._paho
        chunks = [self._buffer]
        total = 0
        while total < MAX_READ_BYTES:
            if paho._sock is None:
                return
            try:
                data = paho._sock_recv(READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:  # closed: what came before it first (a CONNACK refusal, say)
                self._buffer = self._frame(b"".join(chunks))
                if paho._sock is not None:
                    self._lost()
                return
            chunks.append(data)
            total += len(data)
        else:
            if not self._scheduled:  # more may be waiting: read again after other tasks
                self._scheduled = True
                self._client._loop.call_soon(self.readable)
        if total:
            with paho._msgtime_mutex:
                paho._last_bytes_received = paho_client.time_func()
        self._buffer = self._frame(b"".join(chunks))

    def _lost(self) -> None:
        self._paho._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)

    def _frame(self, data: bytes) -> bytes:
        """Handle every complete packet in ``data``; returns the incomplete rest."""
        pos, end = 0, len(data)
        while pos + 2 <= end:
            header = data[pos]
            length, shift, cursor = 0, 0, pos + 1
            while True:
                if cursor >= end:
                    return data[pos:]
                byte = data[cursor]
                cursor += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    self._paho._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
                    return b""
            if cursor + length > end:
                return data[pos:]
            body = data[cursor : cursor + length]
            pos = cursor + length
            if not self._packet(header, body):
                return b""
        return data[pos:]

    def _packet(self, header: int, body: bytes) -> bool:
        """One packet; ``False`` once the connection is gone."""
        paho = self._paho
        if header & 0xF0 == _PUBACK and self._outbound is not None and self._outbound.acked(body):
            return paho._sock is not None
        if header & 0xF0 == _PUBLISH:
            parsed = parse_publish(header, body, self._v5)
            if parsed is not None:
                message, mid = parsed
                if self._sink(message, mid) and mid:
                    if self._outbound is not None:
                        self._outbound.puback(mid)  # in the same send as our publishes
                    else:
                        paho._send_puback(mid)
                return paho._sock is not None
        paho._in_packet = {
            "command": header,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(body),
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = paho._packet_handle()
        except MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            paho._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }
        if rc > 0:
            paho._loop_rc_handle(rc)
            return False
        return paho._sock is not None


def _from_paho(message: paho_client.MQTTMessage) -> InboundMessage:
    props = message.properties
    return InboundMessage(
        topic=message.topic,
        payload=bytes(message.payload),
        qos=message.qos,
        retain=bool(message.retain),
        response_topic=getattr(props, "ResponseTopic", None) if props is not None else None,
        correlation_data=getattr(props, "CorrelationData", None) if props is not None else None,
    )
