"""The simulated runtime: the :class:`~edgefleet_agent.core.runtime.Runtime` seam in memory.

Used by the fleet simulator (hundreds of agents in one process, no containers) and by
tests that need a real agent without Docker. It is deterministic: failures come from a
seeded RNG, usage figures are a fixed function of seed and workload name, and time comes
from an injected clock. With ``state_file`` set, the table is written atomically after each
change and read back on start, so a restarted agent adopts its simulated workloads exactly
as it would adopt real containers.

Knobs a spec can carry in ``env`` (for tests and simulator scenarios):

``EDGEFLEET_SIM_FAIL``
    ``transient`` or ``permanent``: :meth:`SimulatedRuntime.start` raises that error kind.
``EDGEFLEET_SIM_HEALTH``
    ``fail``: every exec (health) probe fails with exit code 1.

Restart policy: a workload :meth:`crash`-ed by a test or scenario is restarted at once
when its spec says ``always`` (or ``on-failure`` with a non-zero code), like Docker does.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from edgefleet_protocol import Resources, WorkloadUsage
from edgefleet_protocol.node_messages import WorkloadState

from edgefleet_agent.core.runtime import (
    ExecResult,
    Observed,
    PermanentRuntimeError,
    ResourceUpdate,
    TransientRuntimeError,
    WorkloadRef,
)
from edgefleet_agent.store import write_atomically

FAIL_ENV = "EDGEFLEET_SIM_FAIL"
HEALTH_ENV = "EDGEFLEET_SIM_HEALTH"


@dataclass(frozen=True, slots=True)
class SimWorkload:
    """One row of the simulated table (JSON-serialisable as it is)."""

    name: str
    app: str
    spec_hash: str
    runtime_id: str
    state: WorkloadState
    since: float
    ready_at: float
    restart_policy: str
    cpu: float
    memory_mb: int
    health_fails: bool = False
    restarts: int = 0
    exit_code: int | None = None
    message: str = ""


_ROW_FIELDS = tuple(f.name for f in fields(SimWorkload))


class SimulatedRuntime:
    """Workloads as rows in a table. Not thread-safe; one event loop owns it."""

    name = "simulated"

    def __init__(
        self,
        *,
        seed: int = 0,
        start_delay_s: float = 0.0,
        failure_rate: float = 0.0,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], got {failure_rate}")
        self.seed = seed
        self.start_delay_s = start_delay_s
        self.failure_rate = failure_rate
        self.state_file = state_file
        self._clock = clock
        self._rng = random.Random(seed)
        self._table: dict[str, SimWorkload] = self._load()

    # -- persistence ----------------------------------------------------------------------

    def _load(self) -> dict[str, SimWorkload]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            rows = json.loads(self.state_file.read_bytes())
            return {row["name"]: SimWorkload(**row) for row in rows}
        except (ValueError, TypeError, KeyError):
            # A damaged table means "nothing is running": the agent starts what is desired.
            return {}

    def _save(self) -> None:
        if self.state_file is None:
            return
        # Not dataclasses.asdict: its deep copy of these flat rows was half of a start's
        # cost in a fleet of simulated agents (bench.fleet_profiled).
        rows = [{name: getattr(row, name) for name in _ROW_FIELDS} for row in self._table.values()]
        write_atomically(self.state_file, json.dumps(rows, separators=(",", ":")).encode())

    # -- the seam -------------------------------------------------------------------------

    async def available(self) -> bool:
        return True

    async def list_owned(self) -> list[Observed]:
        self._advance()
        return [self._observed(row) for row in self._table.values()]

    async def prepare(self, ref: WorkloadRef) -> None:
        # Nothing to pull; failure knobs apply at start so a test sees one failing step.
        return None

    async def start(self, ref: WorkloadRef) -> Observed:
        if ref.name in self._table:
            raise PermanentRuntimeError(f"simulated workload {ref.name} already exists")
        knob = ref.spec.env.get(FAIL_ENV, "")
        if knob == "permanent":
            raise PermanentRuntimeError(f"simulated permanent start failure of {ref.name}")
        if knob == "transient" or self._rng.random() < self.failure_rate:
            raise TransientRuntimeError(f"simulated transient start failure of {ref.name}")
        now = self._clock()
        row = SimWorkload(
            name=ref.name,
            app=ref.app,
            spec_hash=ref.spec_hash,
            runtime_id=f"sim-{self._rng.getrandbits(48):012x}",
            state="starting" if self.start_delay_s > 0 else "running",
            since=now,
            ready_at=now + self.start_delay_s,
            restart_policy=ref.spec.restart,
            cpu=ref.spec.resources.cpu,
            memory_mb=ref.spec.resources.memory_mb,
            health_fails=ref.spec.env.get(HEALTH_ENV, "") == "fail",
        )
        self._table[ref.name] = row
        self._save()
        return self._observed(row)

    async def remove(self, name: str, *, timeout_s: float = 10.0) -> None:
        if self._table.pop(name, None) is not None:
            self._save()

    async def restart(self, name: str) -> None:
        row = self._require(name)
        self._table[name] = self._restarted(row)
        self._save()

    async def exec(self, name: str, command: list[str], *, timeout_s: float) -> ExecResult:
        row = self._table.get(name)
        if row is None or row.state not in ("running", "starting"):
            return ExecResult(126, f"simulated workload {name} is not running")
        if row.health_fails or (command and command[0] == "false"):
            return ExecResult(1, f"simulated check {' '.join(command)} failed")
        return ExecResult(0, "ok")

    async def update_resources(self, name: str, resources: Resources) -> ResourceUpdate:
        row = self._require(name)
        self._table[name] = replace(row, cpu=resources.cpu, memory_mb=resources.memory_mb)
        self._save()
        return ResourceUpdate(applied=True)

    async def usage(self) -> dict[str, WorkloadUsage]:
        self._advance()
        return {
            row.name: self._usage(row) for row in self._table.values() if row.state == "running"
        }

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self._save()

    # -- scenario hooks -------------------------------------------------------------------

    def crash(self, name: str, *, exit_code: int = 1) -> None:
        """Make a workload exit; its restart policy decides whether it comes back."""
        row = self._require(name)
        policy = row.restart_policy
        if policy == "always" or (policy == "on-failure" and exit_code != 0):
            self._table[name] = replace(self._restarted(row), exit_code=exit_code)
        else:
            state: WorkloadState = "failed" if exit_code != 0 else "stopped"
            self._table[name] = replace(
                row,
                state=state,
                since=self._clock(),
                exit_code=exit_code,
                message=f"exited with code {exit_code}",
            )
        self._save()

    def table(self) -> dict[str, SimWorkload]:
        """A copy of the table, for assertions and the simulator's views."""
        return dict(self._table)

    # -- internals ------------------------------------------------------------------------

    def _require(self, name: str) -> SimWorkload:
        row = self._table.get(name)
        if row is None:
            raise PermanentRuntimeError(f"no simulated workload named {name}")
        return row

    def _restarted(self, row: SimWorkload) -> SimWorkload:
        now = self._clock()
        return replace(
            row,
            state="starting" if self.start_delay_s > 0 else "running",
            since=now,
            ready_at=now + self.start_delay_s,
            restarts=row.restarts + 1,
            message="",
        )

    def _advance(self) -> None:
        now = self._clock()
        changed = False
        for name, row in self._table.items():
            if row.state == "starting" and now >= row.ready_at:
                self._table[name] = replace(row, state="running", since=row.ready_at)
                changed = True
        if changed:
            self._save()

    def _observed(self, row: SimWorkload) -> Observed:
        return Observed(
            name=row.name,
            app=row.app,
            spec_hash=row.spec_hash,
            state=row.state,
            runtime_id=row.runtime_id,
            restarts=row.restarts,
            since=row.since,
            exit_code=row.exit_code,
            message=row.message,
        )

    def _usage(self, row: SimWorkload) -> WorkloadUsage:
        # A fixed function of (seed, name, limits): steady, so telemetry deadbands hold.
        rng = random.Random(f"{self.seed}:{row.name}")
        cpu = row.cpu * 100 * rng.uniform(0.05, 0.6)
        memory = row.memory_mb * rng.uniform(0.2, 0.7)
        return WorkloadUsage(cpu_pct=round(cpu, 1), memory_mb=round(memory, 1))
