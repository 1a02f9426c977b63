"""The agent's closed step vocabulary: everything the executor may do to a workload.

:func:`edgefleet_agent.core.planner.plan_steps` returns a list of these frozen values and
:mod:`edgefleet_agent.service.executor` runs them; the executor matches on the union with
``assert_never`` so adding a step type without teaching the executor is a type error
(STYLE.md §7). Every step names the runtime it acts on and carries a ``reason`` for logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefleet_protocol import Resources

from edgefleet_agent.core.runtime import WorkloadRef


@dataclass(frozen=True, slots=True)
class Prepare:
    """Make a workload startable (Docker: pull the image) before anything old is removed."""

    runtime: str
    ref: WorkloadRef
    reason: str = "new workload"

    @property
    def name(self) -> str:
        return self.ref.name


@dataclass(frozen=True, slots=True)
class Start:
    """Create and start a workload that does not exist in ``runtime`` yet."""

    runtime: str
    ref: WorkloadRef
    reason: str = "new workload"

    @property
    def name(self) -> str:
        return self.ref.name


@dataclass(frozen=True, slots=True)
class Remove:
    """Stop and remove an owned workload (gracefully, then forcibly after ``timeout_s``)."""

    runtime: str
    name: str
    spec_hash: str
    reason: str
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart an owned workload in place (after its health check failed)."""

    runtime: str
    name: str
    spec_hash: str
    reason: str


@dataclass(frozen=True, slots=True)
class UpdateResources:
    """Apply new limits live: only the resources differ between the running and the
    desired spec (equal :func:`~edgefleet_protocol.identity_hash`), so no restart."""

    runtime: str
    name: str
    resources: Resources
    from_hash: str
    to_hash: str
    reason: str = "resources changed"


Step = Prepare | Start | Remove | Restart | UpdateResources


def describe(step: Step) -> str:
    """One line for logs and test failure messages."""
    kind = type(step).__name__
    return f"{kind}({step.runtime}:{step.name}: {step.reason})"
