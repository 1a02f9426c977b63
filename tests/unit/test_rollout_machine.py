"""The rollout state machine, pure: one table row per rule, each named as a sentence.

Every row starts from a rollout state, shows the machine a fleet view at a time ``now``,
and checks the phase, what is released, and what failed. Replicas are ``web-0`` ..
``web-N``; ``site`` alternates when a row asks for waves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from edgefleet_orchestrator.rollout.machine import (
    AGENT_GRACE_S,
    ReplicaView,
    RolloutView,
    revert,
    set_phase,
    step,
)
from edgefleet_orchestrator.rollout.state import (
    Healthy,
    RolloutState,
    from_json,
    start_rollout,
    to_json,
)
from edgefleet_protocol import WorkloadSpec
from edgefleet_protocol.manifest import Update

OLD = WorkloadSpec(runtime="process", command=["/bin/app", "v1"])
NEW = WorkloadSpec(runtime="process", command=["/bin/app", "v2"])


def fresh(*, canary: bool = False, first: Sequence[str] = ()) -> RolloutState:
    s = start_rollout(
        "web", revision=2, from_revision=1, from_workload=OLD, to_workload=NEW,
        canary=canary, now=0.0,
    )  # fmt: skip
    return replace(s, first=tuple(first))


def replicas(
    n: int, *, groups: Sequence[str] = ("all",), **per: dict[str, Any]
) -> list[ReplicaView]:
    out = []
    for i in range(n):
        name = f"web-{i}"
        out.append(ReplicaView(name, f"gw-{i}", groups[i % len(groups)], **per.get(name, {})))
    return out


def healthy(
    view: Sequence[ReplicaView], names: Sequence[str], restarts: int = 0
) -> list[ReplicaView]:
    return [
        replace(r, on_target=True, healthy=True, restarts=restarts) if r.replica in names else r
        for r in view
    ]


@dataclass(frozen=True)
class Row:
    name: str
    state: Callable[[], RolloutState]
    view: Callable[[], list[ReplicaView]]
    update: Update
    now: float
    phase: str
    released: int | None = None
    failed: Sequence[str] = ()
    check: Callable[[RolloutState], bool] | None = None


def done(s: RolloutState, names: Sequence[str], *, at: float = 0.0) -> RolloutState:
    return replace(s, released={**s.released, **{n: at for n in names}}, done=s.done | set(names))


ROWS = [
    Row(
        "without an update block every replica gets the new spec at once",
        fresh,
        lambda: replicas(10),
        Update(),
        0.0,
        "progressing",
        released=10,
    ),
    Row(
        "max_parallel 25% of 20 releases five replicas and no more",
        fresh,
        lambda: replicas(20),
        Update(max_parallel="25%"),
        0.0,
        "progressing",
        released=5,
    ),
    Row(
        "a replica healthy for min_healthy_s frees its slot for the next one",
        lambda: replace(
            fresh(),
            wave_order=("all",),
            released={"web-0": 0.0},
            healthy={"web-0": Healthy(1.0, 0)},
        ),
        lambda: healthy(replicas(4), ["web-0"]),
        Update(max_parallel=1, min_healthy_s=5, healthy_deadline_s=30),
        6.5,
        "progressing",
        released=2,
        check=lambda s: "web-0" in s.done,
    ),
    Row(
        "a restart resets the healthy clock",
        lambda: replace(
            fresh(),
            wave_order=("all",),
            released={"web-0": 0.0},
            healthy={"web-0": Healthy(1.0, 0)},
        ),
        lambda: healthy(replicas(4), ["web-0"], restarts=1),
        Update(max_parallel=1, min_healthy_s=5, healthy_deadline_s=30),
        6.5,
        "progressing",
        released=1,
        check=lambda s: s.healthy["web-0"].since == 6.5 and not s.done,
    ),
    Row(
        "canary 10% of 20 releases only the two canary replicas",
        lambda: fresh(canary=True),
        lambda: replicas(20),
        Update(canary="10%", max_parallel="50%"),
        0.0,
        "canary",
        released=2,
        check=lambda s: s.canary == ("web-0", "web-1"),
    ),
    Row(
        "a healthy canary waits for promotion without auto_promote",
        lambda: done(
            replace(fresh(canary=True), wave_order=("all",), canary=("web-0",)), ["web-0"]
        ),
        lambda: healthy(replicas(5), ["web-0"]),
        Update(canary=1, auto_promote=False),
        3.0,
        "awaiting-promotion",
        released=1,
    ),
    Row(
        "a healthy canary with auto_promote goes on to progressing and releases the rest",
        lambda: done(
            replace(fresh(canary=True), wave_order=("all",), canary=("web-0",)), ["web-0"]
        ),
        lambda: healthy(replicas(5), ["web-0"]),
        Update(canary=1),
        3.0,
        "progressing",
        released=5,
    ),
    Row(
        "a canary its agent rolled back fails the rollout and auto_revert reverts everything",
        lambda: replace(
            fresh(canary=True), wave_order=("all",), canary=("web-0",), released={"web-0": 0.0}
        ),
        lambda: replicas(5, **{"web-0": {"rolled_back": "exited with status 1"}}),
        Update(canary=1, auto_revert=True, healthy_deadline_s=8),
        9.0,
        "reverting",
        released=0,
        failed=["web-0"],
    ),
    Row(
        "a failure without auto_revert leaves the rollout failed and moves nothing more",
        lambda: replace(fresh(), wave_order=("all",), released={"web-0": 0.0, "web-1": 0.0}),
        lambda: replicas(6, **{"web-1": {"rolled_back": "health check failing"}}),
        Update(max_parallel=2),
        1.0,
        "failed",
        released=2,
        failed=["web-1"],
    ),
    Row(
        "a replica crash-looping on the new spec fails at once, before its deadline",
        lambda: replace(fresh(), wave_order=("all",), released={"web-0": 0.0}),
        lambda: replicas(3, **{"web-0": {"on_target": True, "restarts": 3}}),
        Update(max_parallel=1, healthy_deadline_s=100),
        5.0,
        "failed",
        released=1,
        failed=["web-0"],
    ),
    Row(
        "failures within max_failed do not stop the rollout",
        lambda: replace(fresh(), wave_order=("all",), released={"web-0": 0.0, "web-1": 0.0}),
        lambda: replicas(6, **{"web-1": {"rolled_back": "health check failing"}}),
        Update(max_parallel=2, max_failed=1),
        1.0,
        "progressing",
        released=3,
        failed=["web-1"],
    ),
    Row(
        "a replica not healthy by healthy_deadline_s plus the agent's grace has failed",
        lambda: replace(fresh(), wave_order=("all",), released={"web-0": 0.0}),
        lambda: replicas(3),
        Update(max_parallel=1, healthy_deadline_s=10, max_failed=3),
        10.0 + AGENT_GRACE_S + 0.1,
        "progressing",
        released=2,
        failed=["web-0"],
    ),
    Row(
        "no progress for progress_deadline_s fails the rollout",
        lambda: replace(fresh(), wave_order=("all",), released={"web-0": 50.0}),
        lambda: replicas(3),
        Update(max_parallel=1, healthy_deadline_s=100, progress_deadline_s=100),
        101.0,
        "failed",
    ),
    Row(
        "waves by site release only the first site",
        fresh,
        lambda: replicas(6, groups=("plant-a", "plant-b")),
        Update(waves="site"),
        0.0,
        "progressing",
        released=3,
        check=lambda s: (
            s.wave_order == ("plant-a", "plant-b") and all(int(r[-1]) % 2 == 0 for r in s.released)
        ),
    ),
    Row(
        "the second site waits wave_pause_s after the first is healthy",
        lambda: done(replace(fresh(), wave_order=("plant-a", "plant-b")), ["web-0", "web-2"]),
        lambda: healthy(replicas(4, groups=("plant-a", "plant-b")), ["web-0", "web-2"]),
        Update(waves="site", wave_pause_s=5),
        1.0,
        "progressing",
        released=2,
        check=lambda s: s.wave == 0 and s.wave_done_at == 1.0,
    ),
    Row(
        "the second site starts when the pause is over",
        lambda: replace(
            done(replace(fresh(), wave_order=("plant-a", "plant-b")), ["web-0", "web-2"]),
            wave_done_at=1.0,
        ),
        lambda: healthy(replicas(4, groups=("plant-a", "plant-b")), ["web-0", "web-2"]),
        Update(waves="site", wave_pause_s=5),
        6.0,
        "progressing",
        released=4,
        check=lambda s: s.wave == 1,
    ),
    Row(
        "every replica healthy means succeeded",
        lambda: done(replace(fresh(), wave_order=("all",)), ["web-0", "web-1"]),
        lambda: healthy(replicas(2), ["web-0", "web-1"]),
        Update(),
        2.0,
        "succeeded",
        released=2,
    ),
    Row(
        "reverting ends when no replica reports the new spec",
        lambda: revert(replace(fresh(), wave_order=("all",)), "undo", 0.0),
        lambda: replicas(3),
        Update(),
        1.0,
        "reverted",
        released=0,
    ),
    Row(
        "reverting waits while a replica still reports the new spec",
        lambda: revert(replace(fresh(), wave_order=("all",)), "undo", 0.0),
        lambda: healthy(replicas(3), ["web-2"]),
        Update(),
        1.0,
        "reverting",
    ),
    Row(
        "a paused rollout releases nothing",
        lambda: set_phase(replace(fresh(), wave_order=("all",)), "paused", "op", 0.0),
        lambda: replicas(3),
        Update(),
        1.0,
        "paused",
        released=0,
    ),
    Row(
        "replicas a superseded rollout had moved go first",
        lambda: fresh(first=["web-7"]),
        lambda: replicas(8),
        Update(max_parallel=1),
        0.0,
        "progressing",
        check=lambda s: list(s.released) == ["web-7"],
    ),
    Row(
        "a rollout of an app with no replicas succeeds at once",
        fresh,
        lambda: [],
        Update(),
        0.0,
        "succeeded",
        released=0,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_rollout_step(row: Row) -> None:
    after, _ = step(row.state(), RolloutView(tuple(row.view()), row.update), row.now)
    assert after.phase == row.phase
    if row.released is not None:
        assert len(after.released) == row.released
    assert sorted(after.failed) == sorted(row.failed)
    if row.check is not None:
        assert row.check(after)


def test_a_finished_rollout_is_left_as_it_is() -> None:
    finished = replace(fresh(), phase="succeeded")
    assert step(finished, RolloutView((), Update()), 5.0) == (finished, [])


def test_the_state_survives_its_json_form_unchanged() -> None:
    s = replace(
        fresh(canary=True),
        wave_order=("a", "b"),
        canary=("web-0",),
        released={"web-0": 1.5},
        healthy={"web-0": Healthy(2.0, 1)},
        done=frozenset({"web-0"}),
        failed={"web-1": "why"},
        paused_from="canary",
        reasons=("x",),
    )
    assert from_json(to_json(s)) == s


def test_a_deploy_during_a_rollout_starts_from_the_superseded_rollouts_start_spec() -> None:
    old = replace(fresh(), wave_order=("all",), released={"web-0": 0.0, "web-1": 0.0},
                  failed={"web-1": "bad"})  # fmt: skip
    newer = WorkloadSpec(runtime="process", command=["/bin/app", "v3"])
    s = start_rollout("web", revision=3, from_revision=2, from_workload=NEW, to_workload=newer,
                      canary=False, now=1.0, superseded=old)  # fmt: skip
    assert (s.from_workload, s.from_revision, s.first) == (OLD, 1, ("web-0",))
