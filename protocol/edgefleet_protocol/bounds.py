"""The finite bound of every number an agent puts on the wire.

Why: a value the models accept travels into placement, sizing and autoscaling, which do
integer arithmetic on it (``millicores``, sums of reservations). ``cpu_cores: 1e308`` was
once accepted here and crashed every reconcile pass with an ``OverflowError`` (issue #12),
so every number a node sends is held to a range a real gateway can have, with room to
spare, and anything outside is refused at the edge like any other ill-typed field.
docs/protocol.md ("Bounds") lists each one; ``tests/unit/test_bounds.py`` holds the models
to them.

The limits are generous on purpose: they exist to keep arithmetic finite, not to judge
hardware.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

MAX_SAFE_INT: Final = 2**53 - 1
"""Counters (session, generation, restarts): the largest integer every JSON reader
(JavaScript, Node-RED) holds exactly."""

MAX_TIMESTAMP: Final = 1e10
"""Epoch seconds: 1e10 is the year 2286."""

MAX_CPU_CORES: Final = 1024
MAX_MEMORY_MB: Final = 4_194_304  # 4 TiB, the device-profile limit
MAX_DISK_MB: Final = 1_073_741_824  # 1 PiB
MAX_BANDWIDTH_MBPS: Final = 1_000_000  # 1 Tbit/s
MAX_LATENCY_MS: Final = 3_600_000  # one hour
MAX_CPU_PCT: Final = 100 * MAX_CPU_CORES  # a workload may use every core
MAX_LOAD: Final = 1_000_000
MAX_METRIC: Final = 1e15
"""Custom metrics (autoscaling reads them): finite, at most 1e15 in magnitude."""

Counter = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP)]
Percent = Annotated[float, Field(ge=0, le=100)]
CpuPercent = Annotated[float, Field(ge=0, le=MAX_CPU_PCT)]
LatencyMs = Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)]
Metric = Annotated[float, Field(ge=-MAX_METRIC, le=MAX_METRIC)]
Port = Annotated[int, Field(ge=1, le=65535)]

__all__ = [
    "MAX_BANDWIDTH_MBPS",
    "MAX_CPU_CORES",
    "MAX_CPU_PCT",
    "MAX_DISK_MB",
    "MAX_LATENCY_MS",
    "MAX_LOAD",
    "MAX_MEMORY_MB",
    "MAX_METRIC",
    "MAX_SAFE_INT",
    "MAX_TIMESTAMP",
    "Counter",
    "CpuPercent",
    "LatencyMs",
    "Metric",
    "Percent",
    "Port",
    "Timestamp",
]
