"""Per-gateway rollback, pure (core/revert.py): when a guarded workload passes, when it
goes back to its previous spec, and what the planner is given then."""

from __future__ import annotations

from edgefleet_agent.core.planner import OwnedWorkload
from edgefleet_agent.core.revert import MIN_OBSERVED_S, Guards, effective, judge, next_deadline
from edgefleet_agent.core.runtime import Observed
from edgefleet_protocol import DesiredWorkload, RolloutGuard, WorkloadSpec, spec_hash
from edgefleet_protocol.node_messages import WorkloadState

OLD = WorkloadSpec(runtime="process", command=["/bin/app", "v1"])
NEW = WorkloadSpec(runtime="process", command=["/bin/app", "v2"])
GUARD = RolloutGuard(revision=2, previous_spec=OLD, previous_spec_hash=spec_hash(OLD),
                     healthy_deadline_s=8.0, min_healthy_s=2.0)  # fmt: skip
WANT = DesiredWorkload(name="web-0", app="web", spec=NEW, spec_hash=spec_hash(NEW), rollout=GUARD)


def running(
    spec: WorkloadSpec, state: WorkloadState = "running", restarts: int = 0
) -> OwnedWorkload:
    obs = Observed(
        "web-0", "web", spec_hash(spec), state, "pid-1", restarts=restarts, health="none"
    )
    return OwnedWorkload("process", obs)


def test_a_spec_healthy_for_min_healthy_s_passes_and_is_never_reverted() -> None:
    g, new = judge([WANT], [running(NEW)], Guards(), now=0.0)
    g, new = judge([WANT], [running(NEW)], g, now=2.5)
    assert g.watches["web-0"].passed and not new
    g, new = judge([WANT], [running(NEW, "starting", 1)], g, now=20.0)
    assert not new and not g.reverted


def test_a_crash_looping_spec_is_reverted_at_the_deadline_with_its_reason() -> None:
    g, _ = judge([WANT], [running(NEW)], Guards(), now=0.0)
    g, _ = judge([WANT], [running(NEW, restarts=1)], g, now=3.0)  # restarted: clock again
    g, new = judge([WANT], [running(NEW, "starting", 2)], g, now=7.9)
    assert not new
    g, new = judge([WANT], [running(NEW, "starting", 3)], g, now=8.0)
    assert [r.name for r in new] == ["web-0"] and "3 restart(s)" in new[0].reason
    (back,) = effective([WANT], g)
    assert (back.spec, back.spec_hash, back.rollout) == (OLD, spec_hash(OLD), None)


def test_a_revert_lasts_while_the_desired_hash_is_the_failed_one_and_ends_with_another() -> None:
    g, _ = judge([WANT], [], Guards(), now=0.0)
    g, new = judge([WANT], [], g, now=9.0)
    assert new and "it never ran" in new[0].reason
    g, new = judge([WANT], [running(OLD)], g, now=30.0)
    assert not new and "web-0" in g.reverted
    newer = WorkloadSpec(runtime="process", command=["/bin/app", "v3"])
    other = DesiredWorkload(name="web-0", app="web", spec=newer, spec_hash=spec_hash(newer))
    g, _ = judge([other], [running(OLD)], g, now=31.0)
    assert not g.reverted and effective([other], g) == [other]


def test_a_spec_is_never_passed_on_a_glimpse_shorter_than_the_minimum() -> None:
    quick = WANT.model_copy(update={"rollout": GUARD.model_copy(update={"min_healthy_s": 0.0})})
    g, _ = judge([quick], [running(NEW)], Guards(), now=0.0)
    g, _ = judge([quick], [running(NEW)], g, now=MIN_OBSERVED_S / 2)
    assert not g.watches["web-0"].passed


def test_the_loop_is_woken_at_the_next_deadline() -> None:
    g, _ = judge([WANT], [], Guards(), now=100.0)
    assert next_deadline([WANT], g) == 108.0
    g, _ = judge([WANT], [running(NEW)], g, now=101.0)
    assert next_deadline([WANT], g) == 103.0
