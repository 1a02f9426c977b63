"""What a :class:`~edgefleet_protocol.session.Session` counts (split out of session.py
for its size; imported from there)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edgefleet_protocol.mqtt_client import ProtocolVersion
from edgefleet_protocol.mqtt_outbound import NOT_SENT
from edgefleet_protocol.wire import Publication


@dataclass
class SessionStats:
    connects: int = 0
    dropped_qos0: int = 0
    received: int = 0
    published: int = 0
    publish_failures: int = 0
    protocol: ProtocolVersion | None = None
    rtt_ms: float | None = None
    """PUBACK round trip of the last QoS 1 publish: the broker latency, measured on the
    session's own traffic instead of an extra connection per probe."""
    outages: int = 0
    last_error: str | None = None
    connect_errors: list[str] = field(default_factory=list)
    refused: str | None = None
    """The broker's CONNACK refusal of these credentials (``AUTH_REFUSALS``), until a
    connect succeeds: a caller that cannot fix them need not wait out its timeout."""
    publishes_refused: int = 0

    def count_batch(
        self,
        pubs: Sequence[Publication],
        results: Sequence[int],
        on_published: Callable[[Publication], None] | None,
    ) -> tuple[int, tuple[str, str] | None]:
        """Count a :meth:`~edgefleet_protocol.session.Session.publish_many`; returns how
        many the broker took and the last (topic, reason) it refused, if any."""
        taken, refusal = 0, None
        for pub, code in zip(pubs, results, strict=True):
            if code == 0:
                taken += 1
                self.published += 1
                if on_published is not None:
                    on_published(pub)
                continue
            self.publish_failures += 1
            if code != NOT_SENT:  # an MQTT 5 PUBACK failure reason (an ACL refusal)
                refusal = (pub.topic, str(ReasonCode(PacketTypes.PUBACK, identifier=code)))
                self.publishes_refused += 1
        return taken, refusal
