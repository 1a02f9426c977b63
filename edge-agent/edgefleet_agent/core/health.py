"""The health-check state machine: pure, one value per workload, driven by probe results.

:mod:`edgefleet_agent.service.prober` runs the actual HTTP/TCP/exec probe and hands the verdict to
:func:`record`; the agent folds the resulting status into the workload's observed health,
and the planner restarts a workload whose health is ``unhealthy``.

The semantics follow Docker's HEALTHCHECK, which operators already know:

* ``starting`` until the first success; failures inside ``start_period_s`` do not count
  (a slow service is not punished for booting), but a success ends the start period.
* ``failure_threshold`` consecutive failures make the workload ``unhealthy``; one success
  makes it ``healthy`` again.
* After a restart the machine begins again (:func:`begin`), start period included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from edgefleet_protocol import HealthCheck
from edgefleet_protocol.node_messages import Health

HealthStatus = Literal["starting", "healthy", "unhealthy"]
FIRST_PROBE_AFTER_S = 1.0
"""The first probe comes soon after start rather than a whole interval later."""


@dataclass(frozen=True, slots=True)
class HealthState:
    status: HealthStatus
    started_at: float
    next_probe_at: float
    consecutive_failures: int = 0
    last_output: str = ""


def begin(check: HealthCheck, now: float) -> HealthState:
    """The state of a freshly started (or restarted) workload."""
    return HealthState(
        status="starting",
        started_at=now,
        next_probe_at=now + min(check.interval_s, FIRST_PROBE_AFTER_S),
    )


def is_due(state: HealthState, now: float) -> bool:
    return now >= state.next_probe_at


def record(
    state: HealthState, check: HealthCheck, *, ok: bool, output: str, now: float
) -> HealthState:
    """The state after one probe result."""
    after = replace(state, next_probe_at=now + check.interval_s, last_output=output)
    if ok:
        return replace(after, status="healthy", consecutive_failures=0)
    in_start_period = state.status == "starting" and now < state.started_at + check.start_period_s
    if in_start_period:
        return replace(after, consecutive_failures=0)
    failures = state.consecutive_failures + 1
    status: HealthStatus = "unhealthy" if failures >= check.failure_threshold else state.status
    return replace(after, status=status, consecutive_failures=failures)


def as_health(state: HealthState) -> Health:
    """The ``reported`` health of a machine state (``starting`` is not yet known)."""
    return "unknown" if state.status == "starting" else state.status
