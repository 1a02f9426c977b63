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


STABLE_AFTER_S = 0.5
"""A connection that lasted this long was not dropped by the broker on arrival. A broker
that kicks a client (a second client with its id, a refused subscription) does so within
a round trip or two of the CONNACK, well under this; a flapping link that holds for half
a second is a link, and must not escalate the backoff: with 2 s, ten random link cuts on
a quiet machine kept one agent away 6.3 s, past the grace, and restarted its replica."""

KICK_STREAK = 5
"""This many connections in a row lost within :data:`STABLE_AFTER_S` of connecting means
a broker that keeps dropping the client (see :class:`ReconnectSchedule`)."""


class ReconnectSchedule:
    """When to try the broker again: one :class:`Backoff` sequence per outage.

    The rule (issue #13): the attempt counter resets whenever a connection that completed
    its connect sequence is lost, so the first retry of every outage — a link cut, a broker
    restart — comes within ``base_s`` and a short cut costs about its own length, however
    many cuts came before. The one exception is a broker that keeps dropping the client
    right after accepting it (an ACL that refuses its subscriptions, a second agent with
    the same client id, a broker in a crash loop): after :data:`KICK_STREAK` connections
    in a row that each lasted under ``stable_after_s``, the sequence goes on escalating
    (to the 30 s cap) until a connection lasts, so such a broker is not hammered four
    times a second by a whole fleet.

    Pure: the caller passes a monotonic ``now`` and the RNG. Not thread-safe; one per session.
    """

    def __init__(self, backoff: Backoff, *, stable_after_s: float = STABLE_AFTER_S) -> None:
        self.backoff = backoff
        self.stable_after_s = stable_after_s
        self.attempt = 0
        self.short_streak = 0
        self._up_since: float | None = None
        self.outage_since: float | None = None

    def connected(self, now: float) -> float | None:
        """The connect sequence completed; returns how long the outage lasted, if any."""
        self._up_since = now
        lasted = None if self.outage_since is None else now - self.outage_since
        self.outage_since = None
        return lasted

    def lost(self, now: float) -> bool:
        """The connection (or an attempt) ended; returns whether a new outage began."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None:
            lasted = now - up_since
            self.short_streak = 0 if lasted >= self.stable_after_s else self.short_streak + 1
            if self.short_streak < KICK_STREAK:
                self.attempt = 0
        new = self.outage_since is None
        if new:
            self.outage_since = now
        return new

    def next_delay(self, rng: random.Random) -> float:
        """Seconds to wait before the next attempt (and count the attempt)."""
        delay = self.backoff.delay(self.attempt, rng)
        self.attempt += 1
        return delay
