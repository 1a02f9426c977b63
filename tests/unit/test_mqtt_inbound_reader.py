"""The inbound reader between the socket and the session (``mqtt_inbound``'s invariants):
packets framed across any split of the byte stream, each PUBLISH delivered exactly once and
in order, a QoS 1 acknowledgement sent when the sink says so and not before, at most
about ``MAX_READ_BYTES`` read per wake-up, every other packet left to paho, and a closed or
broken connection reported. A real paho client (aiomqtt's) reads from a socket whose
bytes the test hands over piece by piece; what paho sends back is kept and decoded. No
broker: the live path is tests/integration/test_session*.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any, cast

import aiomqtt
import pytest
from edgefleet_protocol import mqtt_inbound
from edgefleet_protocol.mqtt_inbound import acknowledge, install, parse_publish, until_disconnected
from edgefleet_protocol.mqtt_outbound import Outbound
from edgefleet_protocol.wire import InboundMessage
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

EOF = object()
MIB = 1 << 20


class Wire:
    """The socket paho reads: ``incoming`` pieces come out of ``recv`` one per call (a
    piece larger than the buffer in several), then ``BlockingIOError``; ``EOF`` reads as
    the peer's close, an exception is raised. What paho sends is kept in ``sent``."""

    def __init__(self) -> None:
        self.incoming: deque[object] = deque()
        self.sent = bytearray()
        self.closed = False
        self.received = 0

    def recv(self, size: int) -> bytes:
        if not self.incoming:
            raise BlockingIOError
        piece = self.incoming.popleft()
        if piece is EOF:
            return b""
        if isinstance(piece, BaseException):
            raise piece
        data = cast(bytes, piece)
        if len(data) > size:
            self.incoming.appendleft(data[size:])
            data = data[:size]
        self.received += len(data)
        return data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def close(self) -> None:
        self.closed = True


class Peer:
    """One reader on one client over a :class:`Wire`, and what reached the sink."""

    def __init__(self, *, v5: bool = True, ack_now: bool = True, outbound: Any = None) -> None:
        protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
        self.client = aiomqtt.Client("127.0.0.1", 1883, identifier="reader", protocol=protocol)
        self.paho = self.client._client
        install(self.client, self.sink, v5=v5, outbound=outbound)  # paho's on_message: ours
        # Only paho itself writes: the socket callbacks need a real file descriptor (the
        # last test runs them on one).
        self.paho.on_socket_open = None
        self.paho.on_socket_close = None
        self.paho.on_socket_register_write = None
        self.paho.on_socket_unregister_write = None
        self.wire = Wire()
        self.paho._sock = self.wire
        self.delivered: list[tuple[InboundMessage, int]] = []
        self.ack_now = ack_now
        self.disconnects: list[Any] = []
        self.paho.on_disconnect = lambda *args: self.disconnects.append(args)
        self.reader = mqtt_inbound._Reader(self.client, self.sink, v5=v5, outbound=outbound)

    def sink(self, message: InboundMessage, mid: int) -> bool:
        self.delivered.append((message, mid))
        return self.ack_now

    def feed(self, *pieces: object) -> None:
        self.wire.incoming.extend(pieces)
        self.reader.readable()

    @property
    def topics(self) -> list[str]:
        return [m.topic for m, _ in self.delivered]

    @property
    def connected(self) -> bool:
        return self.paho._sock is not None


def packet(header: int, body: bytes) -> bytes:
    length, size = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        size.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([header]) + bytes(size) + body


def publish(
    topic: str, payload: bytes = b"{}", *, qos: int = 0, mid: int = 0, props: bytes = b"\x00",
    retain: bool = False,
) -> bytes:  # fmt: skip
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + (mid.to_bytes(2, "big") if qos else b"")
    return packet(0x30 | qos << 1 | int(retain), body + props + payload)


def props(**values: object) -> bytes:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(p, name, value)
    packed: bytes = p.pack()  # type: ignore[no-untyped-call]
    return packed


def pubacks(sent: bytes) -> list[int]:
    """The packet ids of the PUBACKs in ``sent`` (and nothing else may be there)."""
    mids, pos = [], 0
    while pos < len(sent):
        assert sent[pos] == 0x40, f"not a PUBACK: {sent[pos:]!r}"
        length = sent[pos + 1]
        mids.append(int.from_bytes(sent[pos + 2 : pos + 4], "big"))
        pos += 2 + length
    return mids


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` cut at every position, and in pieces of 1, 2, 3 and 7 bytes."""
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]
    for size in (1, 2, 3, 7):
        yield [data[i : i + size] for i in range(0, len(data), size)]


STREAM_V5 = (
    publish("ef/a", b'{"n":1}')
    + publish("ef/b", b"x" * 300, qos=1, mid=258, retain=True)  # a 2-byte remaining length
    + packet(0xD0, b"")  # PINGRESP: paho's
    + publish("ef/c", b"", props=props(ResponseTopic="ef/replies/u/1", CorrelationData=b"\x01"))
)


async def test_packets_split_anywhere_arrive_once_in_order_one_wake_up_per_piece() -> None:
    for pieces in splits(STREAM_V5):
        peer = Peer()
        for piece in pieces:
            peer.feed(piece)
        assert peer.topics == ["ef/a", "ef/b", "ef/c"], pieces
        _, (b, mid_b), (c, _) = peer.delivered
        assert (b.payload, b.qos, b.retain, mid_b) == (b"x" * 300, 1, True, 258)
        assert (c.response_topic, c.correlation_data) == ("ef/replies/u/1", b"\x01")
        assert pubacks(bytes(peer.wire.sent)) == [258]
        assert peer.connected and peer.disconnects == []
        assert peer.reader._buffer == b""


async def test_a_four_byte_remaining_length_is_awaited_and_a_fifth_byte_is_an_error() -> None:
    peer = Peer()
    peer.feed(b"\x30\x80\x80\x80\x01" + b"\x00\x01t")  # 2 MiB announced, 3 bytes here
    assert peer.connected and peer.delivered == []
    peer = Peer()
    peer.feed(b"\x30\x80\x80\x80\x80\x01")
    assert not peer.connected and peer.wire.closed
    assert len(peer.disconnects) == 1


@pytest.mark.parametrize("v5", [True, False])
async def test_a_qos1_publish_is_acknowledged_only_when_the_sink_says_so(v5: bool) -> None:
    peer = Peer(v5=v5, ack_now=False)
    empty = b"\x00" if v5 else b""
    peer.feed(publish("ef/q", qos=1, mid=7, props=empty) + publish("ef/z", props=empty))
    assert [(m.topic, mid) for m, mid in peer.delivered] == [("ef/q", 7), ("ef/z", 0)]
    assert peer.wire.sent == b"", "no PUBACK before the inbox has room"
    acknowledge(peer.client, 7)
    assert pubacks(bytes(peer.wire.sent)) == [7]


async def test_a_qos0_publish_is_never_acknowledged() -> None:
    peer = Peer(ack_now=True)
    peer.feed(publish("ef/t"))
    assert peer.topics == ["ef/t"] and peer.wire.sent == b""


async def test_an_acknowledgement_after_the_connection_ended_is_not_sent() -> None:
    peer = Peer(ack_now=False)
    peer.feed(publish("ef/q", qos=1, mid=9), EOF)
    assert not peer.connected
    acknowledge(peer.client, 9)
    assert peer.wire.sent == b""


async def test_what_came_before_the_close_is_delivered_then_the_loss_reported() -> None:
    peer = Peer()
    peer.feed(publish("ef/last"), EOF)
    assert peer.topics == ["ef/last"]
    assert not peer.connected and peer.wire.closed and len(peer.disconnects) == 1


async def test_a_read_error_is_a_lost_connection() -> None:
    peer = Peer()
    peer.feed(publish("ef/x"), ConnectionResetError(104, "reset"))
    assert peer.topics == ["ef/x"]
    assert not peer.connected and len(peer.disconnects) == 1


async def test_nothing_after_a_disconnect_from_the_broker_is_delivered() -> None:
    peer = Peer()
    peer.feed(publish("ef/before") + packet(0xE0, b"\x00") + publish("ef/after"))
    assert peer.topics == ["ef/before"]
    assert not peer.connected and len(peer.disconnects) == 1


async def test_a_packet_paho_finds_malformed_ends_the_connection() -> None:
    peer = Peer()
    peer.feed(packet(0xD0, b"\x00") + publish("ef/after"))  # a PINGRESP with a body
    assert peer.topics == [] and not peer.connected


async def test_a_publish_paho_cannot_decode_ends_the_connection_as_a_protocol_error() -> None:
    peer = Peer()
    unknown_property = b"\x02\x17\x01"  # QoS 2 is paho's; its decoder raises on this
    peer.feed(publish("ef/q2", qos=2, mid=3, props=unknown_property) + publish("ef/after"))
    assert peer.topics == [] and not peer.connected
    assert not peer.client._disconnected.done(), "paho's own disconnect, not a reader crash"
    assert len(peer.disconnects) == 1


async def test_a_disconnect_from_the_broker_alone_in_a_read_ends_the_connection_at_once() -> None:
    peer = Peer()
    peer.feed(publish("ef/before"), packet(0xE0, b""))  # 2 bytes, the last of the read
    assert peer.topics == ["ef/before"]
    assert not peer.connected and len(peer.disconnects) == 1


async def test_a_qos2_publish_is_paho_s_and_reaches_the_sink_once_released() -> None:
    peer = Peer(v5=True)
    mine = props(ResponseTopic="ef/replies/u/2", CorrelationData=b"c2")
    peer.feed(publish("ef/q2", b"two", qos=2, mid=5, props=mine))
    assert peer.delivered == []
    assert peer.wire.sent[:1] == b"\x50", "paho answered PUBREC"
    peer.feed(packet(0x62, b"\x00\x05") + publish("ef/next"))  # PUBREL, then more
    message, mid = peer.delivered[0]
    assert (message.topic, message.payload, message.qos, mid) == ("ef/q2", b"two", 2, 0)
    assert (message.response_topic, message.correlation_data) == ("ef/replies/u/2", b"c2")
    assert peer.topics == ["ef/q2", "ef/next"]


async def test_a_qos2_publish_over_3_1_1_has_no_properties() -> None:
    peer = Peer(v5=False)
    peer.feed(publish("ef/q2", b"two", qos=2, mid=5, props=b""), packet(0x62, b"\x00\x05"))
    ((message, _),) = peer.delivered
    assert (message.response_topic, message.correlation_data) == (None, None)


class Acks:
    """The session's outbound side, as the reader sees it: which PUBACKs were its own."""

    def __init__(self, mine: set[int]) -> None:
        self.mine, self.seen = mine, []  # type: list[int]

    def acked(self, body: bytes) -> bool:
        mid = int.from_bytes(body[:2], "big")
        self.seen.append(mid)
        return mid in self.mine


async def test_pubacks_of_the_session_s_own_publishes_go_to_it_the_rest_to_paho() -> None:
    acks = Acks({3})
    peer = Peer(outbound=cast(Outbound, acks))
    peer.feed(packet(0x40, b"\x00\x03") + packet(0x40, b"\x00\x04") + publish("ef/x"))
    assert acks.seen == [3, 4]
    assert peer.topics == ["ef/x"] and peer.connected


async def test_one_wake_up_reads_about_a_mebibyte_and_the_rest_after_other_tasks() -> None:
    peer = Peer()
    one = publish("ef/t", b"p" * 1000)
    count = (3 * MIB) // len(one) + 1
    peer.wire.incoming.append(one * count)
    peer.reader.readable()
    first = peer.wire.received
    assert MIB <= first < MIB + 65536, "a mebibyte, and at most the rest of its last chunk"
    assert len(peer.delivered) == first // len(one)
    for _ in range(10):
        await asyncio.sleep(0)
    assert peer.wire.received == len(one) * count
    assert len(peer.delivered) == count


async def test_reading_marks_the_connection_alive_for_keepalive() -> None:
    peer = Peer()
    peer.paho._last_bytes_received = 0.0
    peer.feed(publish("ef/t"))
    assert peer.paho._last_bytes_received > 0.0


async def test_a_sink_that_fails_ends_the_connection_with_its_error() -> None:
    peer = Peer()
    peer.client._disconnected = asyncio.get_running_loop().create_future()

    def failing(message: InboundMessage, mid: int) -> bool:
        raise RuntimeError("sink broke")

    peer.reader._sink = failing
    peer.feed(publish("ef/t"))
    assert isinstance(peer.client._disconnected.exception(), RuntimeError)
    with pytest.raises(aiomqtt.MqttError) as caught:
        await until_disconnected(peer.client)
    assert str(caught.value) == "Disconnected during message iteration"
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("header", "body"),
    [
        # A topic of 300 bytes: its length takes both bytes of the size field.
        (0x30, (300).to_bytes(2, "big") + b"t" * 300 + b"\x00{}"),
        # The topic fills the packet: no payload at all (3.1.1).
        (0x30, b"\x00\x02ef"),
        # Topic alias (2 bytes), then a response topic: the alias's size must be right.
        (0x30, b"\x00\x01t" + props(TopicAlias=3, ResponseTopic="r/1") + b"{}"),
        # Properties longer than 127 bytes: a 2-byte property length.
        (0x30, b"\x00\x01t" + props(ResponseTopic="r/" + "x" * 200) + b"{}"),
    ],
)
def test_edge_shapes_of_a_publish_read_as_paho_reads_them(header: int, body: bytes) -> None:
    v5 = body != b"\x00\x02ef"
    parsed = parse_publish(header, body, v5)
    assert parsed is not None
    version = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    oracle = _packet.decode_publish(header, body, version)
    props = oracle.properties
    assert parsed[0] == InboundMessage(
        topic=oracle.topic.decode(),
        payload=bytes(oracle.payload),
        qos=oracle.qos,
        retain=oracle.retain,
        response_topic=getattr(props, "ResponseTopic", None) if props is not None else None,
        correlation_data=None,
    )


def test_a_subscription_id_longer_than_4_bytes_is_left_to_paho() -> None:
    body = b"\x00\x01t" + b"\x06\x0b\xff\xff\xff\xff\x01" + b"{}"
    assert parse_publish(0x30, body, True) is None


async def test_install_reads_the_socket_once_paho_opens_it_and_acks_later_through_the_loop() -> (
    None
):
    opened: list[object] = []
    client = aiomqtt.Client("127.0.0.1", 1883, identifier="installed")
    paho = client._client
    paho.on_socket_open = lambda c, u, sock: opened.append(sock)  # aiomqtt's, as far as we care
    got: list[tuple[InboundMessage, int]] = []
    install(client, lambda m, mid: bool(got.append((m, mid))), v5=True)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.setblocking(False)
    try:
        paho._sock = ours
        paho.on_socket_open(paho, None, ours)
        assert opened == [ours], "aiomqtt's own socket callback still runs first"
        broker.sendall(publish("ef/live", qos=1, mid=11))
        for _ in range(10_000):
            if got:
                break
            await asyncio.sleep(0)
        assert [(m.topic, mid) for m, mid in got] == [("ef/live", 11)]
        acknowledge(client, 11)  # queued by paho; written when the loop finds the socket writable
        sent = b""
        for _ in range(10_000):
            try:
                sent += broker.recv(100)
            except BlockingIOError:
                await asyncio.sleep(0)
            if len(sent) >= 4:
                break
        assert pubacks(sent) == [11]
    finally:
        loop = asyncio.get_running_loop()
        loop.remove_reader(ours.fileno())
        loop.remove_writer(ours.fileno())
        paho._sock = None
        ours.close()
        broker.close()


async def test_a_write_that_fails_ends_the_connection_with_its_error() -> None:
    client = aiomqtt.Client("127.0.0.1", 1883, identifier="failing-write")
    paho = client._client
    paho.on_socket_open = None
    install(client, lambda m, mid: False, v5=True)
    ours, broker = socket.socketpair()
    ours.setblocking(False)

    def broken_write(*_args: object) -> object:
        raise OSError(32, "broken pipe")

    paho.loop_write = broken_write  # the failure a write can meet, raised where paho writes
    try:
        paho._sock = ours
        acknowledge(client, 5)  # queues the PUBACK: the loop writes it, and fails
        for _ in range(10_000):
            if client._disconnected.done():
                break
            await asyncio.sleep(0)
        assert isinstance(client._disconnected.exception(), OSError)
    finally:
        asyncio.get_running_loop().remove_writer(ours.fileno())
        paho._sock = None
        ours.close()
        broker.close()
