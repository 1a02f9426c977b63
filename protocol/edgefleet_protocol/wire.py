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

    def ceiling(self, attempt: int) -> float:
        """The longest delay of step ``attempt`` (0-based)."""
        return float(min(self.cap_s, self.base_s * (2 ** min(attempt, 30))))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return jittered(self.ceiling(attempt), rng)


def jittered(ceiling: float, rng: random.Random) -> float:
    """A random point in the upper half of ``[0, ceiling]``."""
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

FAST_RETRY_S = 1.0
"""While an outage is younger than :data:`FAST_FOR_S`, retries are at most this far apart,
so a link that comes back is found within about this long. Doubling on through a young
outage is what kept agents away: a retry that missed the moment a link came back waited as
long again as the outage so far, and a flapping link (cut 2 s, back 0.9 s, cut 1.8 s)
kept an agent away 6.9 s (issue #13, measured with the chaos suite's proxy)."""

FAST_FOR_S = 30.0
"""How long an outage is retried every :data:`FAST_RETRY_S`: the default disconnect grace
(``disconnect.grace_s``), so an outage shorter than the grace ends, as the orchestrator sees
it, within about a second of the link's return and moves nothing. Older outages double on
from there to the cap (2, 4, 8, 16, 30 s), so a broker that is down for long is not
hammered. A failed retry against an unreachable broker is one refused or reset TCP
connection."""


class ReconnectSchedule:
    """When to try the broker again: one :class:`Backoff` sequence per outage.

    The rules (issue #13):

    * The attempt counter resets whenever a connection that completed its connect sequence
      is lost, so the first retry of every outage — a link cut, a broker restart — comes
      within ``base_s``, however many cuts came before.
    * While the outage is younger than ``fast_for_s`` the delays stop doubling at
      ``fast_retry_s`` (0.25, 0.5, then 0.5 to 1 s each), so a link that returns is found
      within ``fast_retry_s`` of its return, whether the outage was one cut or several
      (an attempt during a cut fails at once: the link resets it, or closes it before
      the CONNACK). After that they double on from ``fast_retry_s`` to ``cap``.
    * The exception is a broker that keeps dropping the client right after accepting it
      (an ACL that refuses its subscriptions, a second agent with the same client id, a
      broker in a crash loop): after :data:`KICK_STREAK` connections in a row that each
      lasted under ``stable_after_s``, the sequence goes on escalating (to the 30 s cap,
      young or not) until a connection lasts, so such a broker is not hammered several
      times a second by a whole fleet.

    Pure: the caller passes a monotonic ``now`` and the RNG. Not thread-safe; one per session.
    """

    def __init__(
        self,
        backoff: Backoff,
        *,
        stable_after_s: float = STABLE_AFTER_S,
        fast_retry_s: float = FAST_RETRY_S,
        fast_for_s: float = FAST_FOR_S,
    ) -> None:
        self.backoff = backoff
        self.stable_after_s = stable_after_s
        self.fast_retry_s = fast_retry_s
        self.fast_for_s = fast_for_s
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

    def next_delay(self, rng: random.Random, now: float) -> float:
        """Seconds to wait before the next attempt (and count the attempt)."""
        ceiling = self.backoff.ceiling(self.attempt)
        young = self.outage_since is not None and now - self.outage_since < self.fast_for_s
        if young and self.short_streak < KICK_STREAK and ceiling >= self.fast_retry_s:
            ceiling = self.fast_retry_s  # held here; the doubling resumes once the outage is old
        else:
            self.attempt += 1
        return jittered(ceiling, rng)
