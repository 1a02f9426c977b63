"""Runs the agent's health checks: which workloads are due, probe them, keep the verdicts.

The shell around the pure :mod:`edgefleet_agent.core.health` machine. One
:class:`HealthWatch` per agent tracks one machine per workload *instance* (runtime id, spec
hash and restart count): a new container, a new spec or a restart starts the machine over,
start period included. The converge loop reads the verdicts through :meth:`overlay`, so a
workload that turned ``unhealthy`` is reported so (with the failing check's output) and
restarted by the planner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from edgefleet_protocol import WorkloadSpec

from edgefleet_agent.core.health import HealthState, as_health, begin, is_due, record
from edgefleet_agent.core.planner import OwnedWorkload
from edgefleet_agent.core.runtime import Observed, Runtime
from edgefleet_agent.service.prober import ProbeResult, run_probe

IDLE_WAIT_S = 5.0
MIN_WAIT_S = 0.2

SpecLookup = Callable[[str, str], WorkloadSpec | None]
Notify = Callable[[str, str, ProbeResult], Awaitable[None]]
"""Called with (workload, new status, probe result) when a workload's status changes."""


@dataclass(frozen=True, slots=True)
class TrackedHealth:
    runtime_id: str
    spec_hash: str
    restarts: int
    state: HealthState

    def instance(self) -> tuple[str, str, int]:
        return (self.runtime_id, self.spec_hash, self.restarts)


def _instance(obs: Observed) -> tuple[str, str, int]:
    return (obs.runtime_id, obs.spec_hash, obs.restarts)


class HealthWatch:
    def __init__(self, *, clock: Callable[[], float], notify: Notify) -> None:
        self._clock = clock
        self._notify = notify
        self.tracked: dict[str, TrackedHealth] = {}

    def overlay(self, obs: Observed) -> Observed:
        """``obs`` with the agent's verdict, when one is tracked for this very instance."""
        tracked = self.tracked.get(obs.name)
        if tracked is None or obs.state != "running" or tracked.instance() != _instance(obs):
            return obs
        health = as_health(tracked.state)
        message = tracked.state.last_output if health == "unhealthy" else obs.message
        return replace(obs, health=health, message=message)

    def forget(self, name: str) -> None:
        """Start over for ``name`` (it was restarted, replaced or removed)."""
        self.tracked.pop(name, None)

    async def once(
        self,
        owned: Sequence[OwnedWorkload],
        *,
        spec_for: SpecLookup,
        runtimes: Mapping[str, Runtime],
        unavailable: Mapping[str, str],
    ) -> tuple[float, bool]:
        """Probe whatever is due; returns (seconds until the next probe, any status changed)."""
        now = self._clock()
        due: list[tuple[str, Runtime, WorkloadSpec]] = []
        watched: set[str] = set()
        for o in owned:
            obs = o.observed
            spec = spec_for(obs.name, obs.spec_hash)
            check = spec.health if spec is not None else None
            runtime = runtimes.get(o.runtime)
            if (
                spec is None
                or check is None
                or check.kind == "docker"
                or runtime is None
                or obs.state != "running"
                or o.runtime in unavailable
            ):
                continue
            watched.add(obs.name)
            tracked = self.tracked.get(obs.name)
            if tracked is None or tracked.instance() != _instance(obs):
                tracked = TrackedHealth(*_instance(obs), state=begin(check, now))
                self.tracked[obs.name] = tracked
            if is_due(tracked.state, now):
                due.append((obs.name, runtime, spec))
        for name in [n for n in self.tracked if n not in watched]:
            del self.tracked[name]
        results = await asyncio.gather(
            *(
                run_probe(spec.health, spec=spec, name=name, runtime=runtime)
                for name, runtime, spec in due
                if spec.health is not None
            )
        )
        changed = False
        for (name, _, spec), result in zip(due, results, strict=True):
            changed |= await self._record(name, spec, result)
        upcoming = [t.state.next_probe_at for t in self.tracked.values()]
        if not upcoming:
            return IDLE_WAIT_S, changed
        return max(MIN_WAIT_S, min(upcoming) - self._clock()), changed

    async def _record(self, name: str, spec: WorkloadSpec, result: ProbeResult) -> bool:
        tracked = self.tracked.get(name)
        if tracked is None or spec.health is None:
            return False
        after = record(
            tracked.state, spec.health, ok=result.ok, output=result.output, now=self._clock()
        )
        self.tracked[name] = replace(tracked, state=after)
        if after.status == tracked.state.status:
            return False
        await self._notify(name, after.status, result)
        return True
