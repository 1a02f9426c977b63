"""The benchmark's own MQTT 3.1.1 codec: lengths, packets, and a stream split into frames
however the bytes arrive (its live use against mosquitto is in test_bench_smoke.py)."""

from __future__ import annotations

import pytest

from bench import mqtt_wire as wire

LENGTHS = [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
]


@pytest.mark.parametrize(("length", "encoded"), LENGTHS)
def test_remaining_length_uses_seven_bits_per_byte(length: int, encoded: bytes) -> None:
    assert wire.encode_length(length) == encoded
    assert wire.decode_length(b"\x30" + encoded, 1) == (length, 1 + len(encoded))


@pytest.mark.parametrize("length", [-1, 268_435_456])
def test_a_length_mqtt_cannot_say_is_refused(length: int) -> None:
    with pytest.raises(wire.WireError, match="remaining length"):
        wire.encode_length(length)


def test_a_length_field_longer_than_four_bytes_is_refused() -> None:
    with pytest.raises(wire.WireError, match="longer than four bytes"):
        wire.FrameReader().feed(b"\x30\xff\xff\xff\xff\x01")


@pytest.mark.parametrize(
    ("topic", "payload", "qos", "retain", "packet_id"),
    [
        ("a/b", b"{}", 0, False, 0),
        ("edgefleet/v1/nodes/s/n/reported", b'{"v":1}' * 100, 1, True, 7),
        ("x", b"", 1, False, 65535),
        ("t", b"z" * 20_000, 0, True, 0),
    ],
)
def test_a_publish_survives_the_round_trip(
    topic: str, payload: bytes, qos: int, retain: bool, packet_id: int
) -> None:
    packet = wire.publish(topic, payload, qos=qos, retain=retain, packet_id=packet_id)
    (frame,) = wire.FrameReader().feed(packet)
    assert frame.kind == wire.Packet.PUBLISH
    assert wire.parse_publish(frame) == wire.Message(topic, payload, qos, retain, packet_id)


def test_publish_bytes_are_laid_out_as_the_spec_says() -> None:
    # MQTT 3.1.1 section 3.3: PUBLISH QoS 1 retain, topic "a/b", packet id 10, payload "hi".
    expected = bytes([0x33, 9, 0, 3]) + b"a/b" + bytes([0, 10]) + b"hi"
    assert wire.publish("a/b", b"hi", qos=1, retain=True, packet_id=10) == expected


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"qos": 2}, "QoS 2"),
        ({"qos": 1, "packet_id": 0}, "packet id"),
        ({"qos": 1, "packet_id": 70_000}, "packet id"),
    ],
)
def test_a_publish_mqtt_would_refuse_is_refused_here(kwargs: dict[str, int], reason: str) -> None:
    with pytest.raises(wire.WireError, match=reason):
        wire.publish("t", b"", **kwargs)  # type: ignore[arg-type]


def test_connect_carries_clean_session_keepalive_and_a_retained_will() -> None:
    packet = wire.connect("node-1", keepalive=120, will=wire.Will("w/t", b"bye", qos=1))
    (frame,) = wire.FrameReader().feed(packet)
    assert frame.kind == wire.Packet.CONNECT
    body = frame.body
    assert body[:6] == b"\x00\x04MQTT" and body[6] == 4  # protocol name and level 4
    flags = body[7]
    assert flags & 0x02 and flags & 0x04 and flags & 0x20  # clean, will, will retain
    assert (flags >> 3) & 0x03 == 1  # will QoS
    assert int.from_bytes(body[8:10], "big") == 120
    assert body.endswith(b"\x00\x03w/t\x00\x03bye")


def test_frames_split_anywhere_in_the_stream_come_out_whole_and_in_order() -> None:
    packets = [
        wire.publish("a", b"1"),
        wire.puback(3),
        wire.publish("b/c", b"x" * 300, qos=1, packet_id=9),
        wire.PINGREQ,
    ]
    stream = b"".join(packets)
    for cut in range(1, len(stream)):
        reader = wire.FrameReader()
        frames = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert [f.kind for f in frames] == [3, 4, 3, 12], cut


def test_connack_and_acks_are_read_from_their_frames() -> None:
    (connack,) = wire.FrameReader().feed(b"\x20\x02\x00\x05")
    assert wire.connack_code(connack) == 5
    (suback,) = wire.FrameReader().feed(b"\x90\x03\x00\x2a\x01")
    assert wire.packet_id_of(suback) == 42
    with pytest.raises(wire.WireError, match="expected a CONNACK"):
        wire.connack_code(suback)


def test_a_truncated_publish_is_refused() -> None:
    with pytest.raises(wire.WireError, match="PUBLISH"):
        wire.parse_publish(wire.Frame(3, 0x02, b"\x00\x05ab"))
