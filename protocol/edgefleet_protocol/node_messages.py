"""Payloads the edge agent writes: status, capabilities, telemetry, reported, events.

Timestamps are Unix epoch seconds (float), which Node-RED and every language read as-is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.bounds import (
    MAX_BANDWIDTH_MBPS,
    MAX_CPU_CORES,
    MAX_DISK_MB,
    MAX_LATENCY_MS,
    MAX_LOAD,
    MAX_MEMORY_MB,
    Counter,
    CpuPercent,
    LatencyMs,
    Metric,
    Percent,
    Port,
    Timestamp,
)
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.rollout import RolledBack

NodeState = Literal["online", "offline"]
Level = Literal["debug", "info", "warning", "error"]
WorkloadState = Literal[
    "pending", "pulling", "starting", "running", "unhealthy", "failed", "stopped"
]
Health = Literal["unknown", "healthy", "unhealthy", "none"]
_Metric = Metric


class NodeStatus(Envelope):
    """Presence. The agent's will carries the same ``session`` with ``state: offline``, so a
    late will from an older session is recognisable and ignored."""

    node: Identifier
    site: Identifier
    state: NodeState
    session: Counter
    since: Timestamp
    agent_version: str = Field(default="", max_length=64)


class NetworkInfo(WireModel):
    link: str = Field(default="unknown", max_length=32)
    bandwidth_mbps: float | None = Field(default=None, ge=0, le=MAX_BANDWIDTH_MBPS)
    latency_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)


class Capabilities(Envelope):
    node: Identifier
    site: Identifier
    profile: str | None = Field(default=None, max_length=64)
    arch: str = Field(max_length=32)
    os: str = Field(default="linux", max_length=64)
    cpu_cores: float = Field(gt=0, le=MAX_CPU_CORES)
    memory_mb: int = Field(gt=0, le=MAX_MEMORY_MB)
    disk_mb: int = Field(ge=0, le=MAX_DISK_MB)
    runtimes: list[Literal["docker", "process", "simulated"]] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    sensors: list[str] = Field(default_factory=list)
    accelerators: list[str] = Field(default_factory=list)
    region: str | None = Field(default=None, max_length=64)
    network: NetworkInfo = Field(default_factory=NetworkInfo)
    addresses: list[str] = Field(default_factory=list)
    agent_version: str = Field(default="", max_length=64)
    sealing_key: str | None = Field(default=None, max_length=64)
    """The node's X25519 public key (base64): secrets for its workloads are sealed to it."""


class WorkloadUsage(WireModel):
    cpu_pct: CpuPercent | None = None
    memory_mb: float | None = Field(default=None, ge=0, le=MAX_MEMORY_MB)
    memory_pct: float | None = Field(default=None, ge=0, le=1000)  # of a limit: may overshoot
    metrics: dict[str, _Metric] = Field(default_factory=dict)


class Telemetry(Envelope):
    """Report-by-exception: a message holds only the values that moved past their deadband,
    unless ``full`` is true (the heartbeat), which holds everything. Receivers merge."""

    node: Identifier
    site: Identifier
    ts: Timestamp
    full: bool = False
    cpu_pct: CpuPercent | None = None
    memory_pct: Percent | None = None
    disk_pct: Percent | None = None
    load1: float | None = Field(default=None, ge=0, le=MAX_LOAD)
    latency_ms: dict[str, LatencyMs] = Field(default_factory=dict)
    metrics: dict[str, _Metric] = Field(default_factory=dict)
    workloads: dict[Identifier, WorkloadUsage] = Field(default_factory=dict)


class WorkloadReport(WireModel):
    app: Identifier | None = None
    spec_hash: str = Field(max_length=80)
    state: WorkloadState
    health: Health = "unknown"
    restarts: Counter = 0
    since: Timestamp
    message: str = Field(default="", max_length=2048)
    address: str | None = Field(default=None, max_length=255)
    ports: dict[Identifier, Port] = Field(default_factory=dict)
    # Set while the agent runs the previous spec because the desired one failed its
    # rollout guard (edgefleet_protocol.rollout).
    rolled_back: RolledBack | None = None


class ServiceProxy(WireModel):
    """The agent's local proxy for one service a workload here uses: where it listens
    (``port`` is the service's first port; ``ports`` names each), how many endpoints it
    knows, and why it is not listening when ``state`` is ``failed``."""

    state: Literal["listening", "failed"]
    host: str = Field(max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    ports: dict[Identifier, Port] = Field(default_factory=dict)
    endpoints: Counter = 0
    message: str = Field(default="", max_length=2048)


class Reported(Envelope):
    """What actually runs on the node, and which desired generation it reflects."""

    node: Identifier
    site: Identifier | None = None
    observed_generation: Counter
    session: Counter
    ts: Timestamp
    workloads: dict[Identifier, WorkloadReport] = Field(default_factory=dict)
    proxies: dict[Identifier, ServiceProxy] = Field(default_factory=dict)


class Event(Envelope):
    """A notable thing that happened, for humans and audit: never retained."""

    ts: Timestamp
    level: Level = "info"
    kind: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4096)
    node: Identifier | None = None
    site: Identifier | None = None
    app: Identifier | None = None
    details: dict[str, object] = Field(default_factory=dict)
