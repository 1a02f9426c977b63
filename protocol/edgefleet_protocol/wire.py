"""What goes on and comes off the wire, independent of the MQTT client library.

:class:`Publication` carries each topic's QoS/retain rule from
:data:`~edgefleet_protocol.topics.RULES`; :class:`InboundMessage` is a received message with
its MQTT 5 request/response properties; :class:`Backoff` is the reconnect schedule. Pure
values: decision code may build and test them without importing
:mod:`edgefleet_protocol.session` (which owns the connection).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel

from edgefleet_protocol.codec import encode
from edgefleet_protocol.topics import RULES, TopicKind


@dataclass(frozen=True, slots=True)
class Publication:
    """A message to publish (also used for the will and for final messages)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    expiry_s: int | None = None
    correlation_data: bytes | None = None

    @classmethod
    def of(cls, kind: TopicKind, topic: str, model: BaseModel) -> Publication:
        rule = RULES[kind]
        return cls(topic=topic, payload=encode(model), qos=rule.qos, retain=rule.retain)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``base * 2**n`` up to ``cap``, then a random
    point in its upper half, so a fleet that lost its broker does not reconnect in step."""

    base_s: float = 0.25
    cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** min(attempt, 30)))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))
