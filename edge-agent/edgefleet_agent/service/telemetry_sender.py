"""Telemetry on the wire: sample, let :func:`~edgefleet_agent.core.telemetry.decide` pick
what is news (deadband and heartbeat), publish it at QoS 0, not retained, 60 s expiry.

What was last *sent* is the baseline for the next delta, so a publish that fails keeps its
changes as news for the next tick; :meth:`TelemetrySender.reset` makes the next message
full, for receivers that may have lost their view (a reconnect, a new orchestrator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from edgefleet_protocol.session import Publication, Session

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.core.telemetry import Sample, SentState, compact_json, decide, to_telemetry
from edgefleet_agent.settings import AgentSettings


class Sampler(Protocol):
    """Where telemetry samples come from: the host's :class:`Collector`, or the fleet
    simulator's model of a device (many simulated gateways share one real host)."""

    async def sample(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> Sample: ...


class TelemetrySender:
    """One node's telemetry stream over ``session`` to ``topic``."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        sampler: Sampler,
        session: Session,
        topic: str,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self._settings = settings
        self.sampler = sampler
        self._session = session
        self._topic = topic
        self._clock = clock
        self._monotonic = monotonic
        self._sent = SentState()

    def reset(self) -> None:
        """Forget what was sent: the next message carries every value."""
        self._sent = SentState()

    async def once(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> float:
        """Sample and publish what is news; return the delay until the next sample."""
        s = self._settings
        sample = await self.sampler.sample(runtimes, running)
        decision, after = decide(
            sample, self._sent, now=self._monotonic(), heartbeat_s=s.heartbeat_s, bands=s.deadbands
        )
        if decision is None:
            self._sent = after
        else:
            message = to_telemetry(decision, node=s.node, site=s.site, ts=self._clock())
            pub = Publication(self._topic, compact_json(message), qos=0, retain=False, expiry_s=60)
            if await self._session.publish(pub):
                self._sent = after  # unsent deltas stay news for the next tick
        return s.sample_interval_s
