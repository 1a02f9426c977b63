"""The durable value of one app's rollout, and its JSON form for the store.

Who calls it: the deploy/undo command handlers start or end rollouts
(:func:`start_rollout`), the pass runner steps them (:mod:`.machine`) and stores
:func:`to_json` after each change, and a restarted orchestrator reads :func:`from_json`.
Everything a step needs to continue lives here: the two specs, which replicas got the new
one and when, which have been healthy since when, which failed and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from edgefleet_protocol import RolloutCounts, RolloutStatus, WorkloadSpec
from edgefleet_protocol.rollout import ACTIVE_PHASES, RolloutPhase


@dataclass(frozen=True, slots=True)
class Healthy:
    """A released replica seen healthy on the new spec since ``since``, with ``restarts``
    as reported then (a higher count later means it restarted: the clock starts again)."""

    since: float
    restarts: int


@dataclass(frozen=True, slots=True)
class RolloutState:
    """One app's rollout from revision ``from_revision`` (``from_workload``) to
    ``revision`` (``to_workload``).

    ``released`` maps each replica given the new spec to when; ``done`` are those healthy
    for ``min_healthy_s``; ``failed`` maps replicas to why. ``wave_order`` is fixed at the
    start (site or region names; ``("all",)`` without waves); ``wave`` indexes it.
    ``first`` are replicas a superseded rollout had already moved: they go first.

    How each released replica changed spec, as the reconcile pass decided it (see
    :mod:`edgefleet_orchestrator.reconcile.surges`): ``surged`` maps the replicas updated
    make-before-break to the node their new copy was placed on (the old copy runs on its
    node until the new one is done); ``in_place`` are those updated where they run.
    """

    app: str
    revision: int
    from_revision: int | None
    from_workload: WorkloadSpec
    to_workload: WorkloadSpec
    phase: RolloutPhase
    started_at: float
    phase_since: float
    last_progress_at: float
    wave_order: tuple[str, ...] = ("all",)
    wave: int = 0
    wave_done_at: float | None = None
    canary: tuple[str, ...] = ()
    first: tuple[str, ...] = ()
    released: Mapping[str, float] = field(default_factory=dict)
    healthy: Mapping[str, Healthy] = field(default_factory=dict)
    done: frozenset[str] = frozenset()
    failed: Mapping[str, str] = field(default_factory=dict)
    surged: Mapping[str, str] = field(default_factory=dict)
    in_place: frozenset[str] = frozenset()
    paused_from: RolloutPhase | None = None
    reasons: tuple[str, ...] = ()
    updated_at: float = 0.0

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def splits(self) -> bool:
        """Whether replicas run different specs by ``released`` (else all run the app's)."""
        return self.phase not in ("reverting", "reverted", "succeeded")

    def keeps_old_copy(self, replica: str) -> bool:
        """Whether ``replica``'s make-before-break update is undone: it failed, or the
        rollout reverts or ended before its new copy was done. Its old copy (still running
        on its old node) is kept, on the old spec, and the new copy is dropped."""
        if replica not in self.surged or replica in self.done:
            return False
        return replica in self.failed or self.phase == "reverting" or not self.active

    def runs_new(self, replica: str) -> bool:
        """Whether ``replica`` gets the new spec while the rollout splits the app."""
        return replica in self.released and not self.keeps_old_copy(replica)

    def undecided(self, replica: str) -> bool:
        """Released, but the pass has not yet decided how it changes spec."""
        return (
            replica in self.released
            and replica not in self.surged
            and replica not in self.in_place
            and replica not in self.done
            and replica not in self.failed
        )

    def with_reason(self, reason: str, now: float) -> RolloutState:
        return replace(self, reasons=(*self.reasons, reason)[-20:], updated_at=now)


def start_rollout(
    app: str,
    *,
    revision: int,
    from_revision: int | None,
    from_workload: WorkloadSpec,
    to_workload: WorkloadSpec,
    canary: bool,
    now: float,
    superseded: RolloutState | None = None,
) -> RolloutState:
    """A new rollout; the first step picks waves and the canary. A rollout it supersedes
    hands over its start spec (the last one that ran everywhere) and the replicas it had
    already moved, which go first (see docs/operations.md, "A deploy during a rollout")."""
    first: tuple[str, ...] = ()
    if superseded is not None and superseded.splits:
        from_workload, from_revision = superseded.from_workload, superseded.from_revision
        first = tuple(sorted(r for r in superseded.released if r not in superseded.failed))
    return RolloutState(
        app=app,
        revision=revision,
        from_revision=from_revision,
        from_workload=from_workload,
        to_workload=to_workload,
        phase="canary" if canary else "progressing",
        started_at=now,
        phase_since=now,
        last_progress_at=now,
        wave_order=(),
        first=first,
        updated_at=now,
    )


def status_of(state: RolloutState, *, total: int, updated: int) -> RolloutStatus:
    """The retained ``apps/{app}/rollout`` payload for ``state``."""
    return RolloutStatus(
        app=state.app,
        revision=state.revision,
        from_revision=state.from_revision,
        phase=state.phase,
        counts=RolloutCounts(
            total=total,
            updated=updated,
            healthy=len(state.done),
            failed=len(state.failed),
            surged=len(state.surged),
            in_place=len(state.in_place),
        ),
        wave=state.wave,
        waves=list(state.wave_order),
        canary=list(state.canary),
        failed=dict(state.failed),
        reasons=list(state.reasons),
        started_at=state.started_at,
        updated_at=state.updated_at,
    )


def to_json(state: RolloutState) -> str:
    data: dict[str, Any] = {
        "app": state.app,
        "revision": state.revision,
        "from_revision": state.from_revision,
        "from_workload": state.from_workload.model_dump(mode="json", exclude_none=True),
        "to_workload": state.to_workload.model_dump(mode="json", exclude_none=True),
        "phase": state.phase,
        "started_at": state.started_at,
        "phase_since": state.phase_since,
        "last_progress_at": state.last_progress_at,
        "wave_order": list(state.wave_order),
        "wave": state.wave,
        "wave_done_at": state.wave_done_at,
        "canary": list(state.canary),
        "first": list(state.first),
        "released": dict(state.released),
        "healthy": {r: [h.since, h.restarts] for r, h in state.healthy.items()},
        "done": sorted(state.done),
        "failed": dict(state.failed),
        "surged": dict(state.surged),
        "in_place": sorted(state.in_place),
        "paused_from": state.paused_from,
        "reasons": list(state.reasons),
        "updated_at": state.updated_at,
    }
    return json.dumps(data, sort_keys=True)


def from_json(text: str) -> RolloutState:
    """Raises ``ValueError``/``TypeError``/``KeyError`` on a document it cannot read."""
    d = json.loads(text)
    return RolloutState(
        app=str(d["app"]),
        revision=int(d["revision"]),
        from_revision=None if d["from_revision"] is None else int(d["from_revision"]),
        from_workload=WorkloadSpec.model_validate(d["from_workload"]),
        to_workload=WorkloadSpec.model_validate(d["to_workload"]),
        phase=d["phase"],
        started_at=float(d["started_at"]),
        phase_since=float(d["phase_since"]),
        last_progress_at=float(d["last_progress_at"]),
        wave_order=tuple(str(w) for w in d["wave_order"]),
        wave=int(d["wave"]),
        wave_done_at=None if d["wave_done_at"] is None else float(d["wave_done_at"]),
        canary=tuple(str(c) for c in d["canary"]),
        first=tuple(str(c) for c in d["first"]),
        released={str(k): float(v) for k, v in d["released"].items()},
        healthy={str(k): Healthy(float(v[0]), int(v[1])) for k, v in d["healthy"].items()},
        done=frozenset(str(r) for r in d["done"]),
        failed={str(k): str(v) for k, v in d["failed"].items()},
        surged={str(k): str(v) for k, v in d.get("surged", {}).items()},
        # A rollout stored before make-before-break updates changed every replica in place.
        in_place=frozenset(str(r) for r in d.get("in_place", d["released"])),
        paused_from=d["paused_from"],
        reasons=tuple(str(r) for r in d["reasons"]),
        updated_at=float(d["updated_at"]),
    )
