"""The orchestrator service's settings (from ``edgefleet orchestrator run``) and counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_orchestrator.fleet.registry import DEFAULT_STALE_AFTER_S


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


@dataclass
class ServiceStats:
    passes: int = 0
    messages: int = 0
    rejected: int = 0
    commands: int = 0
    documents_published: int = 0
    last_pass_ms: float = 0.0
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
