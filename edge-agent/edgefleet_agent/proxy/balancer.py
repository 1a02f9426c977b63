"""Choosing an endpoint for one new connection, and what the proxy remembers per endpoint.

Pure (a clock value and an RNG are handed in), used from one event loop. Called by
:mod:`edgefleet_agent.proxy.listener` for every accepted connection; fed catalogs by
:mod:`edgefleet_agent.proxy.proxies`.

How a choice is made, in order:

1. endpoints already tried for this connection are out;
2. endpoints set aside (a recent failed connect) are out — unless nothing else is left,
   then the one whose backoff ends first is tried (a recovered endpoint is found even
   while the broker, and so the catalog, is away);
3. locality per the service's ``topology``: the client's site, else its region, else
   all (``prefer-site``); its region, else all (``prefer-region``); all (``any``);
4. weight-0 endpoints only when no positive weight is left in that group;
5. power of two choices: two draws by weight, the one with fewer open connections per
   unit of weight wins, ties to the first draw. Idle, that is a draw by weight (so
   shares follow weights); busy, it steers away from loaded endpoints.

Passive health: a failed connect sets the endpoint aside for ``base_backoff_s`` doubling
per consecutive failure up to ``max_backoff_s``; a successful connect clears it. That
state survives catalog updates for an endpoint that stays (same node, replica, address).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from edgefleet_protocol import Endpoint, ServiceEndpoints

Key = tuple[str, str, str]
"""An endpoint's identity across catalog revisions: node, replica, address."""


def key_of(endpoint: Endpoint) -> Key:
    return (endpoint.node, endpoint.replica or "", endpoint.address)


@dataclass(slots=True)
class EndpointState:
    active: int = 0
    failures: int = 0
    ejected_until: float = 0.0
    connections: int = 0


@dataclass(slots=True)
class Counters:
    """Totals since the agent started; telemetry turns them into rates."""

    connections: int = 0
    failures: int = 0
    bytes: int = 0
    connect_s: float = 0.0
    connects: int = 0

    def copy(self) -> Counters:
        return Counters(self.connections, self.failures, self.bytes, self.connect_s, self.connects)


@dataclass(slots=True)
class Balancer:
    """One service's endpoints as this agent sees them, for one client site and region."""

    site: str
    region: str | None
    rng: random.Random
    base_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    topology: str = "any"
    endpoints: list[Endpoint] = field(default_factory=list)
    states: dict[Key, EndpointState] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    revision: int = -1

    def update(self, entry: ServiceEndpoints) -> bool:
        """Adopt a catalog entry; an older revision than the one held is ignored."""
        if entry.revision < self.revision:
            return False
        self.revision = entry.revision
        self.topology = entry.topology
        self.endpoints = list(entry.endpoints)
        keep = {key_of(e) for e in self.endpoints}
        for k in [k for k, s in self.states.items() if k not in keep and s.active == 0]:
            del self.states[k]
        return True

    def state(self, endpoint: Endpoint) -> EndpointState:
        return self.states.setdefault(key_of(endpoint), EndpointState())

    def choose(self, now: float, tried: Iterable[Key] = ()) -> Endpoint | None:
        """The endpoint for the next connect attempt, or ``None`` when all were tried."""
        out = set(tried)
        left = [e for e in self.endpoints if key_of(e) not in out]
        if not left:
            return None
        usable = [e for e in left if self.state(e).ejected_until <= now]
        if not usable:
            return min(left, key=lambda e: self.state(e).ejected_until)
        group = self._nearest(usable)
        weighted = [e for e in group if e.weight > 0] or group
        return self._two_choices(weighted)

    def _nearest(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        tiers: list[list[Endpoint]] = []
        if self.topology == "prefer-site":
            tiers.append([e for e in endpoints if e.site == self.site])
        if self.topology in ("prefer-site", "prefer-region") and self.region is not None:
            tiers.append([e for e in endpoints if e.region == self.region])
        return next((t for t in tiers if t), endpoints)

    def _two_choices(self, endpoints: list[Endpoint]) -> Endpoint:
        if len(endpoints) == 1:
            return endpoints[0]
        weights = [max(e.weight, 1) for e in endpoints]
        first, second = self.rng.choices(endpoints, weights=weights, k=2)
        return second if self._load(second) < self._load(first) else first

    def _load(self, endpoint: Endpoint) -> float:
        return self.state(endpoint).active / max(endpoint.weight, 1)

    # -- outcomes of one connection ---------------------------------------------------------

    def connected(self, endpoint: Endpoint, connect_s: float) -> None:
        st = self.state(endpoint)
        st.active += 1
        st.connections += 1
        st.failures = 0
        st.ejected_until = 0.0
        self.counters.connections += 1
        self.counters.connects += 1
        self.counters.connect_s += connect_s

    def failed(self, endpoint: Endpoint, now: float) -> float:
        """Set ``endpoint`` aside after a failed connect; returns for how long."""
        st = self.state(endpoint)
        st.failures += 1
        backoff = min(self.max_backoff_s, self.base_backoff_s * float(2 ** (st.failures - 1)))
        st.ejected_until = now + backoff
        self.counters.failures += 1
        return backoff

    def closed(self, endpoint: Endpoint, moved_bytes: int) -> None:
        st = self.states.get(key_of(endpoint))
        if st is not None:
            st.active = max(0, st.active - 1)
        self.counters.bytes += moved_bytes

    @property
    def active(self) -> int:
        return sum(s.active for s in self.states.values())


def rates(
    before: Counters, after: Counters, seconds: float, *, active: int, prefix: str
) -> dict[str, float]:
    """Telemetry metrics for one service over ``seconds`` (docs/protocol.md, "What it
    measures"): connections, bytes and failures per second, mean connect time, open now."""
    span = max(seconds, 1e-9)
    connects = after.connects - before.connects
    connect_ms = (after.connect_s - before.connect_s) / connects * 1000 if connects else 0.0
    return {
        f"{prefix}.connections_per_s": round((after.connections - before.connections) / span, 3),
        f"{prefix}.bytes_per_s": round((after.bytes - before.bytes) / span, 1),
        f"{prefix}.failures_per_s": round((after.failures - before.failures) / span, 3),
        f"{prefix}.connect_ms": round(connect_ms, 3),
        f"{prefix}.active": float(active),
    }
