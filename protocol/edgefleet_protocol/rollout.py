"""Wire shapes of staged rollouts: the guard in a desired entry, the agent's rollback
report, and the retained rollout status on ``<root>/apps/{app}/rollout``.

Who writes what: the orchestrator puts a :class:`RolloutGuard` in each desired entry whose
workload is under a rollout with ``auto_revert``; the agent writes :class:`RolledBack` in
its reported entry when it went back to the guard's previous spec on its own; the
orchestrator publishes :class:`RolloutStatus` whenever a rollout changes. docs/protocol.md
documents each field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.workload import WorkloadSpec

RolloutPhase = Literal[
    "canary",
    "awaiting-promotion",
    "progressing",
    "paused",
    "succeeded",
    "failed",
    "reverting",
    "reverted",
]
ACTIVE_PHASES: frozenset[str] = frozenset(
    {"canary", "awaiting-promotion", "progressing", "paused", "reverting"}
)
"""Phases in which the rollout still changes replicas (or waits for an operator)."""


class RolloutGuard(WireModel):
    """What an agent needs to revert one workload by itself, with no broker and no
    orchestrator: the spec it ran before, and how long the new one has to prove itself.

    The deadline is relative: it starts when the agent begins applying the new spec, so a
    document that arrives late (the agent was offline) still gives the full time. The new
    spec passes when it has run healthy for ``min_healthy_s`` without a restart before the
    deadline; otherwise the agent starts ``previous_spec`` again and reports
    ``rolled_back``.
    """

    revision: int = Field(ge=1)
    previous_spec: WorkloadSpec
    previous_spec_hash: str = Field(min_length=1, max_length=80)
    healthy_deadline_s: float = Field(gt=0, le=24 * 3600)
    min_healthy_s: float = Field(default=0.0, ge=0, le=24 * 3600)


class RolledBack(WireModel):
    """In a reported entry: the agent reverted from ``spec_hash`` (the desired one) to the
    previous spec it now runs, for ``reason``, at ``at`` (agent clock)."""

    spec_hash: str = Field(min_length=1, max_length=80)
    reason: str = Field(max_length=2048)
    at: float


class RolloutCounts(WireModel):
    """``total`` replicas; ``updated`` run the new revision; ``healthy`` of those have
    been healthy for ``min_healthy_s``; ``failed`` did not make it (or reverted).
    ``surged`` of the released replicas were updated make-before-break (a new copy on
    another node first), ``in_place`` where they ran."""

    total: int = Field(ge=0)
    updated: int = Field(ge=0)
    healthy: int = Field(ge=0)
    failed: int = Field(ge=0)
    surged: int = Field(default=0, ge=0)
    in_place: int = Field(default=0, ge=0)


class RolloutStatus(Envelope):
    """One app's current (or last) rollout, retained on ``apps/{app}/rollout``."""

    app: Identifier
    revision: int = Field(ge=1)
    from_revision: int | None = Field(default=None, ge=1)
    phase: RolloutPhase
    counts: RolloutCounts
    wave: int = Field(default=0, ge=0)
    waves: list[str] = Field(default_factory=list)
    canary: list[Identifier] = Field(default_factory=list)
    failed: dict[Identifier, str] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    started_at: float
    updated_at: float
