"""The inbound fast path's PUBLISH parser and bounded inbox.

The parser must read exactly what paho reads (its own decoder is the oracle here) and
leave to paho whatever it does not handle; the inbox must stay bounded under a flood and
lose no QoS 1 message. The live path against mosquitto is tests/integration/test_session*.py.
"""

from __future__ import annotations

import asyncio

import pytest
from edgefleet_protocol.inbox import Inbox
from edgefleet_protocol.mqtt_inbound import parse_publish
from edgefleet_protocol.mqtt_outbound import encode_publish
from edgefleet_protocol.wire import InboundMessage, Publication
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def _body(topic: bytes, payload: bytes, *, mid: int = 0, props: bytes | None = None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if mid:
        body += mid.to_bytes(2, "big")
    if props is not None:
        body += props
    return body + payload


def _props(**values: object) -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    packed: bytes = props.pack()  # type: ignore[no-untyped-call]
    return packed


def _paho(header: int, body: bytes, v5: bool) -> InboundMessage:
    version = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    p = _packet.decode_publish(header, body, version)
    props = p.properties
    return InboundMessage(
        topic=p.topic.decode(),
        payload=bytes(p.payload),
        qos=p.qos,
        retain=p.retain,
        response_topic=getattr(props, "ResponseTopic", None) if props is not None else None,
        correlation_data=getattr(props, "CorrelationData", None) if props is not None else None,
    )


CASES = [
    pytest.param(0x30, _body(b"ef/nodes/s/n/telemetry", b'{"v":1}'), False, id="3.1.1-qos0"),
    pytest.param(0x33, _body(b"ef/nodes/s/n/status", b"{}", mid=7), False, id="3.1.1-qos1-ret"),
    pytest.param(0x30, _body("ef/ü/é".encode(), b"", props=b"\x00"), True, id="v5-no-props-empty"),
    pytest.param(
        0x32,
        _body(
            b"ef/commands/deploy",
            b'{"verb":"deploy"}',
            mid=65535,
            props=_props(
                PayloadFormatIndicator=1,
                MessageExpiryInterval=60,
                ContentType="application/json",
                ResponseTopic="ef/replies/alice/1",
                CorrelationData=b"\x00\x01corr",
                UserProperty=[("a", "b"), ("c", "d")],
            ),
        ),
        True,
        id="v5-every-property",
    ),
    pytest.param(
        0x30,
        _body(b"t", b"x" * 70_000, props=_props(SubscriptionIdentifier=300)),
        True,
        id="v5-subscription-id-large-payload",
    ),
]


@pytest.mark.parametrize(("header", "body", "v5"), CASES)
def test_a_publish_reads_as_paho_reads_it(header: int, body: bytes, v5: bool) -> None:
    parsed = parse_publish(header, body, v5)
    assert parsed is not None
    message, mid = parsed
    assert message == _paho(header, body, v5)
    assert mid == (int.from_bytes(body[2 + body[1] : 4 + body[1]], "big") if header & 6 else 0)


LEFT_TO_PAHO = [
    pytest.param(0x34, _body(b"t", b"x", mid=1), False, id="qos2"),
    pytest.param(0x30, _body(b"", b"x", props=b"\x00"), True, id="empty-topic-alias"),
    pytest.param(0x30, _body(b"\xff\xfe", b"x"), False, id="topic-not-utf8"),
    pytest.param(0x30, _body(b"t", b"x", props=b"\x02\x17\x01"), True, id="unknown-property"),
    pytest.param(0x30, _body(b"t", b"", props=b"\x05\x03\x00\x09ab"), True, id="property-overrun"),
    pytest.param(0x30, b"\x00\x09abc", False, id="topic-longer-than-packet"),
    pytest.param(0x30, _body(b"t", b"", props=b"\xff\xff\xff\xff\x01"), True, id="bad-varint"),
    pytest.param(
        0x30, _body(b"t", b"", props=b"\x04\x08\x00\x02\xff"), True, id="response-topic-not-utf8"
    ),
]


@pytest.mark.parametrize(("header", "body", "v5"), LEFT_TO_PAHO)
def test_what_the_fast_parser_does_not_take_on_goes_to_paho(
    header: int, body: bytes, v5: bool
) -> None:
    assert parse_publish(header, body, v5) is None


def _msg(n: int, qos: int) -> InboundMessage:
    return InboundMessage(topic=f"t/{n}", payload=b"{}", qos=qos, retain=False)


def test_a_full_inbox_drops_qos0_and_holds_back_qos1_acks_until_there_is_room() -> None:
    async def scenario() -> None:
        inbox = Inbox(capacity=3)
        acked: list[int] = []
        assert [inbox.offer(_msg(n, 1), lambda n=n: acked.append(n)) for n in range(3)] == [
            "queued"
        ] * 3
        assert inbox.offer(_msg(3, 0), None) == "dropped"
        assert inbox.offer(_msg(4, 1), lambda: acked.append(4)) == "deferred"
        assert inbox.offer(_msg(5, 1), lambda: acked.append(5)) == "deferred"
        assert len(inbox) == 5 and acked == []
        assert [(await inbox.get()).topic for _ in range(2)] == ["t/0", "t/1"]
        assert acked == []  # 3 waiting: still full
        assert (await inbox.get()).topic == "t/2"
        assert acked == [4, 5]  # below capacity: the broker may send more
        assert [m.topic for m in await inbox.batch(limit=10)] == ["t/4", "t/5"]

    asyncio.run(scenario())


def test_a_batch_takes_what_waits_up_to_its_limit_in_order() -> None:
    async def scenario() -> None:
        inbox = Inbox(capacity=100)
        waiter = asyncio.create_task(inbox.batch(limit=4))
        await asyncio.sleep(0)
        assert not waiter.done()  # nothing waits yet
        for n in range(6):
            inbox.offer(_msg(n, 0), None)
        assert [m.topic for m in await waiter] == ["t/0", "t/1", "t/2", "t/3"]
        assert [m.topic for m in await inbox.batch(limit=4)] == ["t/4", "t/5"]

    asyncio.run(scenario())


@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize(
    "pub",
    [
        Publication("ef/nodes/s/n/desired", b'{"v":1}', 1, True),
        Publication("ef/replies/a/1", b"{}", 1, False, correlation_data=b"\x00id"),
        Publication("ef/nodes/s/n/telemetry", b"{}", 0, False, expiry_s=60),
        Publication("ef/nodes/s/n/status", b"", 1, True),
        Publication("t", b"x" * 200_000, 1, False),
    ],
)
def test_an_encoded_publish_reads_back_as_paho_reads_it(pub: Publication, v5: bool) -> None:
    packet = encode_publish(pub, 513, v5)
    length, shift, pos = 0, 0, 1
    while True:
        length |= (packet[pos] & 0x7F) << shift
        pos += 1
        if not packet[pos - 1] & 0x80:
            break
        shift += 7
    body = packet[pos:]
    assert len(body) == length
    version = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    read = _packet.decode_publish(packet[0], body, version)
    assert (read.topic.decode(), read.payload, read.qos, read.retain) == (
        pub.topic, pub.payload, pub.qos, pub.retain,
    )  # fmt: skip
    assert read.mid == (513 if pub.qos else 0)
    if v5:
        props = read.properties
        assert getattr(props, "ContentType", None) == ("application/json" if pub.payload else None)
        assert getattr(props, "PayloadFormatIndicator", None) == (1 if pub.payload else None)
        assert getattr(props, "MessageExpiryInterval", None) == pub.expiry_s
        assert getattr(props, "CorrelationData", None) == pub.correlation_data
