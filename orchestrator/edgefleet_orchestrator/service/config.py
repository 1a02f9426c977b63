"""The orchestrator service's settings (from ``edgefleet orchestrator run``) and counters.

The counters are plain values the service bumps as it works; the metrics exporter
(:mod:`edgefleet_orchestrator.exporters`) reads them at scrape time, so the service needs no
metrics library and costs nothing extra when no exporter runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.policy import CompliancePolicy
from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_orchestrator.access.roles import OPEN, AccessPolicy
from edgefleet_orchestrator.fleet.liveness import BurstPolicy, FlapPolicy
from edgefleet_orchestrator.fleet.registry import DEFAULT_STALE_AFTER_S
from edgefleet_orchestrator.security.signer import Signer

_BURST = BurstPolicy()
_FLAP = FlapPolicy()


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """Per client: ``limit`` commands admitted per ``window_s``; ``max_queued`` waiting;
    ``refusal_replies`` ``rate_limited`` answers per window (the rest are only counted)."""

    limit: int = 50
    window_s: float = 5.0
    max_queued: int = 50
    refusal_replies: int = 5
    max_queued_total: int = 5000
    """All clients together: a peer inventing client keys cannot queue without bound."""


@dataclass(frozen=True, slots=True)
class OrchestratorConfig:
    broker: BrokerSettings
    data_dir: Path
    root: str = DEFAULT_ROOT
    client_id: str = "edgefleet-orchestrator"
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    debounce_s: float = 0.05
    tick_s: float = 1.0
    settle_s: float = 1.0
    seed: int = 0
    max_events_per_s: float = 20.0
    scaling_interval_s: float = 15.0
    """How often autoscaling and sizing look at telemetry again (a pass every interval
    while any app has ``autoscale`` or ``resources.auto``)."""
    resize_cooldown_s: float = 60.0
    rebalance_max_moves: int = 2
    """Rebalancing's churn budget: at most this many moves per ``rebalance_interval_s``
    (0 turns rebalancing off)."""
    rebalance_interval_s: float = 60.0
    rebalance_settle_s: float = _FLAP.settle_s
    """A node back online becomes a rebalancing target only after this many seconds."""
    flap_max: int = _FLAP.max_flaps
    """A node that leaves online more than this many times in ``flap_window_s`` is flapping."""
    flap_window_s: float = _FLAP.window_s
    burst_nodes: int = _BURST.nodes
    """This many nodes offline within ``burst_window_s`` is a broker event (0: off)."""
    burst_window_s: float = _BURST.window_s
    burst_hold_s: float = _BURST.hold_s
    """After a broker event, the nodes' disconnect grace starts this much later."""
    policy: CompliancePolicy | None = None
    """The compliance policy every deploy is admitted against (``--policy``)."""
    sealing_key: X25519PrivateKey | None = None
    """Secrets are sealed to this key's public half (published in orchestrator status);
    ``edgefleet orchestrator run`` keeps it in ``<data-dir>/sealing.key``."""
    signer: Signer | None = None
    """The key desired documents are signed with (``--signing-key``); ``None`` publishes
    unsigned documents (the development setup: agents without a trust anchor)."""
    intake: IntakeLimits = IntakeLimits()
    """Per-client command limits (service.intake)."""
    access: AccessPolicy = OPEN
    """Operators' roles and scope (``--roles``); the default lets everyone do everything."""

    def liveness(self) -> tuple[BurstPolicy, FlapPolicy]:
        """The registry's burst and flap rules from these settings."""
        burst = BurstPolicy(self.burst_nodes, self.burst_window_s, self.burst_hold_s)
        flap = FlapPolicy(self.flap_max, self.flap_window_s, self.rebalance_settle_s)
        return burst, flap


DURATION_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Bucket bounds for pass durations: a pass over a few nodes takes about a millisecond,
one over thousands about a second (bench/)."""

CONVERGE_BUCKETS_S: tuple[float, ...] = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
"""Bucket bounds for deploy-to-running times: seconds for processes, minutes for pulls."""


@dataclass
class Observations:
    """A fixed-bucket histogram of observed values (cumulative on export, not here).

    Bounded memory however long the service runs: one count per bucket, a sum and a
    count, as Prometheus histograms need. ``counts[i]`` counts values ``<= bounds[i]``
    and above the previous bound; ``counts[-1]`` the values above every bound.
    """

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1


def _durations() -> Observations:
    return Observations(DURATION_BUCKETS_S)


def _converge() -> Observations:
    return Observations(CONVERGE_BUCKETS_S)


@dataclass
class ServiceStats:
    passes: int = 0
    messages: int = 0
    rejected: int = 0
    commands: int = 0
    commands_refused: int = 0
    """Commands not run: their client was over its rate limit (service.intake)."""
    documents_published: int = 0
    last_pass_ms: float = 0.0
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    # What the metrics exporter reads. Every key set is closed (topic kinds, the invalid
    # message classes below), so no label ever grows with the fleet or with hostile input.
    received_by_kind: dict[str, int] = field(default_factory=dict)
    published_by_kind: dict[str, int] = field(default_factory=dict)
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    pass_seconds: Observations = field(default_factory=_durations)
    placement_seconds: Observations = field(default_factory=_durations)
    deploy_to_running_seconds: Observations = field(default_factory=_converge)
    deploys_waiting: dict[str, float] = field(default_factory=dict)
    """App → when a deploy that changed it was accepted, until all its replicas run."""
