"""The runtime seam: what the agent needs from Docker, plain processes or the simulator.

The agent's planner decides from :class:`Observed` values; an executor calls these methods.
A runtime only ever touches workloads it owns (Docker: containers labelled
``io.edgefleet.managed=true`` for this node; processes: those recorded in the state dir;
simulated: its own table), so a gateway's other containers and processes are safe.

Errors: :class:`TransientRuntimeError` (try again later: daemon busy, pull timed out) and
:class:`PermanentRuntimeError` (retrying the same spec cannot help: image does not exist,
command not found). Both carry a human-readable message that ends up in ``reported``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edgefleet_protocol import Resources, WorkloadSpec, WorkloadUsage
from edgefleet_protocol.node_messages import Health, WorkloadState


class RuntimeError_(Exception):
    """Base of runtime failures; ``message`` is meant for the ``reported`` document."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientRuntimeError(RuntimeError_):
    """Worth retrying with backoff (daemon unavailable, pull timeout, port busy)."""


class PermanentRuntimeError(RuntimeError_):
    """Retrying the same spec cannot help (no such image, command not found, bad spec)."""


@dataclass(frozen=True, slots=True)
class Observed:
    """One owned workload as the runtime sees it now."""

    name: str
    app: str | None
    spec_hash: str
    state: WorkloadState
    runtime_id: str
    restarts: int = 0
    since: float = 0.0
    health: Health = "unknown"
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class ResourceUpdate:
    """What a live resource change achieved: runtimes say what they could not enforce."""

    applied: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    output: str


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """Everything a runtime needs to create one workload."""

    name: str
    app: str
    spec: WorkloadSpec
    spec_hash: str


class Runtime(Protocol):
    """The seam. Implementations: docker, process, simulated."""

    name: str

    async def available(self) -> bool:
        """Whether this runtime can run workloads here now (Docker: the daemon answers)."""
        ...

    async def list_owned(self) -> list[Observed]:
        """Every workload this runtime owns on this node, including stopped/failed ones."""
        ...

    async def prepare(self, ref: WorkloadRef) -> None:
        """Make the workload startable (Docker: pull a missing image, with a timeout)."""
        ...

    async def start(self, ref: WorkloadRef) -> Observed:
        """Create and start the workload; it must not exist yet."""
        ...

    async def remove(self, name: str, *, timeout_s: float = 10.0) -> None:
        """Stop (gracefully, then forcibly after ``timeout_s``) and remove; idempotent."""
        ...

    async def restart(self, name: str) -> None:
        """Restart an owned workload in place (used after failed health checks)."""
        ...

    async def exec(self, name: str, command: list[str], *, timeout_s: float) -> ExecResult:
        """Run ``command`` inside the workload's context (Docker: ``docker exec``; process:
        a subprocess with the workload's env and cwd), for exec health checks."""
        ...

    async def update_resources(self, name: str, resources: Resources) -> ResourceUpdate:
        """Apply new limits live, without a restart where the runtime allows it."""
        ...

    async def usage(self) -> dict[str, WorkloadUsage]:
        """Per-workload CPU/memory usage now, keyed by workload name."""
        ...

    async def close(self) -> None:
        """Release clients and background tasks; owned workloads keep running."""
        ...


@dataclass(frozen=True, slots=True)
class LogRead:
    """Complete log lines (without their newline) and where the next one starts.

    ``cursor`` is opaque to everyone but the runtime that made it (it goes on the wire in
    a logs chunk and comes back in a request). ``gone``: the workload no longer exists.
    """

    lines: list[str]
    cursor: str
    gone: bool = False


@runtime_checkable
class LogReader(Protocol):
    """What a runtime that keeps workload logs offers for logs on demand (process, docker;
    the simulated runtime keeps none). Separate from :class:`Runtime` so a runtime without
    logs needs no stub."""

    async def read_log(self, name: str, *, tail: int, cursor: str | None) -> LogRead:
        """Without ``cursor``: the newest ``tail`` complete lines. With one: the complete
        lines written after it (a bounded batch; call again for more). Raises
        :class:`PermanentRuntimeError` when the workload has no log here."""
        ...
