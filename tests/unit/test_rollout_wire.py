"""The rollout wire shapes, pure: what docs/protocol.md (Rollouts; Node desired state;
Reported state) promises a peer about the guard in a desired entry, the agent's
``rolled_back`` report and the retained rollout status — every documented phase, every
bound at its edge and just past it, with the field named, and the defaults a peer may omit."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, RolloutGuard, WorkloadSpec, spec_hash
from edgefleet_protocol.codec import validate
from edgefleet_protocol.rollout import ACTIVE_PHASES, RolledBack, RolloutCounts, RolloutStatus

OLD = WorkloadSpec(runtime="process", command=["/opt/meter/bin/meter", "--version", "1.4"])
DAY_S = 24 * 3600
"""The longest a guard's deadline or minimum may be (docs: 0 … 86 400 seconds)."""

# docs/protocol.md, Rollouts: "canary → (awaiting-promotion →) progressing → succeeded; on
# abort failed … or reverting → reverted. paused holds any of the first three."
PHASES = ["canary", "awaiting-promotion", "progressing", "paused", "succeeded", "failed",
          "reverting", "reverted"]  # fmt: skip
ENDED = {"succeeded", "failed", "reverted"}


def guard(**fields: Any) -> dict[str, Any]:
    return {"revision": 5, "previous_spec": OLD.model_dump(mode="json"),
            "previous_spec_hash": spec_hash(OLD), "healthy_deadline_s": 8.0, **fields}  # fmt: skip


def status(**fields: Any) -> dict[str, Any]:
    counts = {"total": 2, "updated": 1, "healthy": 1, "failed": 0}
    return {"app": "meter", "revision": 5, "phase": "progressing", "counts": counts,
            "started_at": 1.0, "updated_at": 2.0, **fields}  # fmt: skip


def refused(model: type[Any], data: dict[str, Any]) -> str:
    """The field a refusal names (validation fails with a ProtocolError)."""
    with pytest.raises(ProtocolError) as caught:
        validate(model, data)
    return caught.value.field


# -- the guard in a desired entry ---------------------------------------------------------


def test_a_guard_needs_its_revision_previous_spec_hash_and_deadline() -> None:
    for key in ("revision", "previous_spec", "previous_spec_hash", "healthy_deadline_s"):
        data = guard()
        del data[key]
        assert refused(RolloutGuard, data) == key


def test_a_guard_without_min_healthy_s_passes_as_soon_as_the_spec_runs_healthy() -> None:
    assert validate(RolloutGuard, guard()).min_healthy_s == 0.0


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("revision", 1, 0),
        ("previous_spec_hash", "h", ""),
        ("previous_spec_hash", "h" * 80, "h" * 81),
        ("healthy_deadline_s", 0.001, 0),
        ("healthy_deadline_s", DAY_S, DAY_S + 0.5),
        ("min_healthy_s", 0, -0.5),
        ("min_healthy_s", DAY_S, DAY_S + 0.5),
    ],
)
def test_guard_bounds_at_their_edge_and_just_past(field: str, good: Any, bad: Any) -> None:
    assert getattr(validate(RolloutGuard, guard(**{field: good})), field) == good
    assert refused(RolloutGuard, guard(**{field: bad})) == field


# -- rolled_back in a reported entry ------------------------------------------------------


def test_rolled_back_names_the_failed_hash_and_a_reason_within_bounds() -> None:
    ok = validate(RolledBack, {"spec_hash": "h" * 80, "reason": "r" * 2048, "at": 3.5})
    assert (len(ok.spec_hash), len(ok.reason), ok.at) == (80, 2048, 3.5)
    assert refused(RolledBack, {"spec_hash": "", "reason": "x", "at": 1.0}) == "spec_hash"
    assert refused(RolledBack, {"spec_hash": "h" * 81, "reason": "x", "at": 1.0}) == "spec_hash"
    assert refused(RolledBack, {"spec_hash": "h", "reason": "r" * 2049, "at": 1.0}) == "reason"
    assert refused(RolledBack, {"reason": "x", "at": 1.0}) == "spec_hash"


# -- the retained rollout status ----------------------------------------------------------


@pytest.mark.parametrize("phase", PHASES)
def test_every_documented_phase_is_a_status_a_peer_accepts(phase: str) -> None:
    assert validate(RolloutStatus, status(phase=phase)).phase == phase


def test_an_undocumented_phase_is_refused() -> None:
    assert refused(RolloutStatus, status(phase="rolling")) == "phase"


def test_a_rollout_is_in_progress_until_it_succeeded_failed_or_reverted() -> None:
    # rollout-promote/pause/resume/undo act on a rollout "in progress"; the three ends do
    # not change replicas any more (docs: Rollouts, Operator verbs).
    assert set(PHASES) - ACTIVE_PHASES == ENDED
    assert set(PHASES) >= ACTIVE_PHASES


def test_a_minimal_status_spells_out_the_documented_defaults() -> None:
    s = validate(RolloutStatus, status())
    assert (s.from_revision, s.wave, s.waves, s.canary, s.failed, s.reasons) == (
        None, 0, [], [], {}, [],
    )  # fmt: skip
    assert (s.counts.surged, s.counts.in_place) == (0, 0)
    dumped = s.model_dump(mode="json")
    assert (dumped["waves"], dumped["canary"], dumped["failed"], dumped["reasons"]) == (
        [], [], {}, [],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [("revision", 1, 0), ("from_revision", 1, 0), ("wave", 0, -1)],
)
def test_status_bounds_at_their_edge_and_just_past(field: str, good: int, bad: int) -> None:
    assert getattr(validate(RolloutStatus, status(**{field: good})), field) == good
    assert refused(RolloutStatus, status(**{field: bad})) == field


@pytest.mark.parametrize("count", ["total", "updated", "healthy", "failed", "surged", "in_place"])
def test_each_count_is_zero_or_more(count: str) -> None:
    zero = {"total": 0, "updated": 0, "healthy": 0, "failed": 0, count: 0}
    assert getattr(validate(RolloutCounts, zero), count) == 0
    assert refused(RolloutCounts, {**zero, count: -1}) == count


@pytest.mark.parametrize("count", ["total", "updated", "healthy", "failed"])
def test_the_four_main_counts_are_required(count: str) -> None:
    data = {"total": 0, "updated": 0, "healthy": 0, "failed": 0}
    del data[count]
    assert refused(RolloutCounts, data) == count
