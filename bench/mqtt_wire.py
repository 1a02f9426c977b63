"""MQTT 3.1.1 packets as bytes: just enough of the wire format for benchmark load.

Who uses it: :mod:`bench.mqtt_lite` (the thousands of protocol-level fake nodes a
convergence run needs) and :mod:`bench.ingest_publisher` (pre-encoded telemetry floods).

Why not aiomqtt/paho: a paho client per fake node costs a periodic misc-loop wake-up and
several tasks each, which at a few thousand nodes eats a core of the 2-core machine the
benchmarks measure on — the fleet would measure itself, not the orchestrator. These pure
functions let one process speak plain MQTT for 10,000 nodes at almost no idle cost.

Pure: bytes in, bytes or plain tuples out. Malformed input raises :class:`WireError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class WireError(ValueError):
    """Bytes that are not a well-formed MQTT 3.1.1 packet."""


class Packet(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    SUBSCRIBE = 8
    SUBACK = 9
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


MAX_REMAINING = 268_435_455  # the largest length four varint bytes can say


def encode_length(n: int) -> bytes:
    """The variable-length "remaining length" field (1-4 bytes, 7 bits each)."""
    if not 0 <= n <= MAX_REMAINING:
        raise WireError(f"remaining length {n} is outside 0..{MAX_REMAINING}")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    if len(data) > 0xFFFF:
        raise WireError(f"string of {len(data)} bytes is longer than 65535")
    return len(data).to_bytes(2, "big") + data


def _packet(kind: Packet, flags: int, body: bytes) -> bytes:
    return bytes([(kind << 4) | flags]) + encode_length(len(body)) + body


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def connect(client_id: str, *, keepalive: int = 60, will: Will | None = None) -> bytes:
    """CONNECT with a clean session, optionally with a will."""
    flags = 0x02  # clean session
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _string(will.payload)
    header = _string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
    return _packet(Packet.CONNECT, 0, header + payload)


def publish(
    topic: str, payload: bytes, *, qos: int = 0, retain: bool = False, packet_id: int = 0
) -> bytes:
    if qos not in (0, 1):
        raise WireError(f"QoS {qos} is not supported here (0 or 1)")
    body = _string(topic)
    if qos:
        if not 1 <= packet_id <= 0xFFFF:
            raise WireError(f"a QoS 1 publish needs a packet id in 1..65535, got {packet_id}")
        body += packet_id.to_bytes(2, "big")
    return _packet(Packet.PUBLISH, (qos << 1) | int(retain), body + payload)


def subscribe(packet_id: int, filters: list[str], qos: int = 1) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"".join(_string(f) + bytes([qos]) for f in filters)
    return _packet(Packet.SUBSCRIBE, 0x02, body)


def puback(packet_id: int) -> bytes:
    return _packet(Packet.PUBACK, 0, packet_id.to_bytes(2, "big"))


PINGREQ = bytes([Packet.PINGREQ << 4, 0])
DISCONNECT = bytes([Packet.DISCONNECT << 4, 0])


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    flags: int
    body: bytes


class FrameReader:
    """Splits a byte stream into packets; :meth:`feed` returns every complete one."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        pos = 0
        while True:
            header = decode_length(buf, pos + 1)
            if header is None:
                break
            length, start = header
            end = start + length
            if end > len(buf):
                break
            frames.append(Frame(buf[pos] >> 4, buf[pos] & 0x0F, bytes(buf[start:end])))
            pos = end
        del buf[:pos]
        return frames


def decode_length(buf: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """The remaining length starting at ``at`` and where the body starts, or ``None``
    while the field is still incomplete."""
    length, shift, i = 0, 0, at
    while i < len(buf):
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return length, i
        shift += 7
        if shift > 21:
            raise WireError("remaining length longer than four bytes")
    return None


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int


def parse_publish(frame: Frame) -> Message:
    qos = (frame.flags >> 1) & 0x03
    body = frame.body
    if len(body) < 2:
        raise WireError("PUBLISH too short for its topic length")
    tlen = int.from_bytes(body[:2], "big")
    end = 2 + tlen
    if len(body) < end + (2 if qos else 0):
        raise WireError("PUBLISH shorter than its topic and packet id")
    try:
        topic = body[2:end].decode()
    except UnicodeDecodeError as exc:
        raise WireError(f"PUBLISH topic is not UTF-8: {exc}") from None
    packet_id = 0
    if qos:
        packet_id = int.from_bytes(body[end : end + 2], "big")
        end += 2
    return Message(topic, body[end:], qos, bool(frame.flags & 0x01), packet_id)


def connack_code(frame: Frame) -> int:
    """The CONNACK return code (0 = accepted)."""
    if frame.kind != Packet.CONNACK or len(frame.body) != 2:
        raise WireError(f"expected a CONNACK, got packet type {frame.kind}")
    return frame.body[1]


def packet_id_of(frame: Frame) -> int:
    """The packet id of a PUBACK or SUBACK."""
    if len(frame.body) < 2:
        raise WireError(f"packet type {frame.kind} too short for a packet id")
    return int.from_bytes(frame.body[:2], "big")
