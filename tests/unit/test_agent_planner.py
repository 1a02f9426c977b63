"""The step planner as tables: desired + owned + backoff in, steps out."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_agent.core.backoff import BackoffEntry
from edgefleet_agent.core.planner import OwnedWorkload, plan_steps
from edgefleet_agent.core.runtime import Observed
from edgefleet_agent.core.steps import Prepare, Remove, Restart, Start, UpdateResources, describe
from edgefleet_protocol import DesiredWorkload, WorkloadSpec, spec_hash

NOW = 1_000.0


def spec(**fields: Any) -> WorkloadSpec:
    data: dict[str, Any] = {"runtime": "process", "command": ["sleep", "100"]}
    data.update(fields)
    return WorkloadSpec.model_validate(data)


def want(name: str, s: WorkloadSpec) -> DesiredWorkload:
    return DesiredWorkload(name=name, app="app", spec=s, spec_hash=spec_hash(s))


def have(
    name: str,
    s: WorkloadSpec,
    *,
    state: str = "running",
    health: str = "unknown",
    runtime: str = "process",
) -> OwnedWorkload:
    obs = Observed(
        name=name,
        app="app",
        spec_hash=spec_hash(s),
        state=state,
        runtime_id=f"id-{name}",  # type: ignore[arg-type]
        health=health,  # type: ignore[arg-type]
        message="GET http://127.0.0.1:80/: HTTP 500" if health == "unhealthy" else "",
    )
    return OwnedWorkload(runtime=runtime, observed=obs)


def blocked(s: WorkloadSpec, until: float = NOW + 10) -> BackoffEntry:
    return BackoffEntry(spec_hash(s), 1, until, "start failed", "boom", delay_s=1)


A = spec()
A_MORE_MEMORY = spec(resources={"memory_mb": 256})
A_NEW_COMMAND = spec(command=["sleep", "200"])
A_ON_DOCKER = spec(runtime="docker", image="busybox")
KNOWN = {spec_hash(x): x for x in (A, A_MORE_MEMORY, A_NEW_COMMAND, A_ON_DOCKER)}

CASES: list[
    tuple[str, list[DesiredWorkload], list[OwnedWorkload], dict[str, BackoffEntry], list[str]]
] = [
    ("nothing desired and nothing owned means no steps", [], [], {}, []),
    ("nothing changed means no steps", [want("w1", A)], [have("w1", A)], {}, []),
    (
        "an unchanged workload is not touched even when it is failed (its runtime restarts it)",
        [want("w1", A)],
        [have("w1", A, state="failed")],
        {},
        [],
    ),
    (
        "a missing workload is prepared then started",
        [want("w1", A)],
        [],
        {},
        ["Prepare w1", "Start w1"],
    ),
    ("an owned workload no longer desired is removed", [], [have("old", A)], {}, ["Remove old"]),
    (
        "a resources-only change updates resources live",
        [want("w1", A_MORE_MEMORY)],
        [have("w1", A)],
        {},
        ["UpdateResources w1"],
    ),
    (
        "a changed command replaces the workload, preparing before removing",
        [want("w1", A_NEW_COMMAND)],
        [have("w1", A)],
        {},
        ["Prepare w1", "Remove w1", "Start w1"],
    ),
    (
        "a changed runtime removes it from the old runtime and starts it in the new",
        [want("w1", A_ON_DOCKER)],
        [have("w1", A)],
        {},
        ["Remove w1", "Prepare w1", "Start w1"],
    ),
    (
        "an unhealthy running workload is restarted",
        [want("w1", A)],
        [have("w1", A, health="unhealthy")],
        {},
        ["Restart w1"],
    ),
    (
        "a workload in backoff for its desired hash gets no steps",
        [want("w1", A)],
        [],
        {"w1": blocked(A)},
        [],
    ),
    (
        "a backoff entry for an older hash does not block the new spec",
        [want("w1", A_NEW_COMMAND)],
        [],
        {"w1": blocked(A)},
        ["Prepare w1", "Start w1"],
    ),
    (
        "an expired backoff entry no longer blocks",
        [want("w1", A)],
        [],
        {"w1": blocked(A, until=NOW)},
        ["Prepare w1", "Start w1"],
    ),
    (
        "one workload in backoff does not hold back the others",
        [want("w1", A), want("w2", A)],
        [],
        {"w1": blocked(A)},
        ["Prepare w2", "Start w2"],
    ),
    (
        "a failed move to another runtime backs off the whole workload, old copy included",
        [want("w1", A_ON_DOCKER)],
        [have("w1", A)],
        {"w1": blocked(A_ON_DOCKER)},
        [],
    ),
    (
        "an undesired workload whose removal failed waits for its backoff",
        [],
        [have("old", A)],
        {"old": blocked(A)},
        [],
    ),
    (
        "removals come before starts so they free resources first",
        [want("new", A)],
        [have("old", A)],
        {},
        ["Remove old", "Prepare new", "Start new"],
    ),
]


@pytest.mark.parametrize(
    ("desired", "owned", "backoff", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_steps(
    desired: list[DesiredWorkload],
    owned: list[OwnedWorkload],
    backoff: dict[str, BackoffEntry],
    expected: list[str],
) -> None:
    steps = plan_steps(desired, owned, now=NOW, backoff=backoff, known_specs=KNOWN)
    assert [f"{type(s).__name__} {s.name}" for s in steps] == expected, [describe(s) for s in steps]


def test_a_resources_change_is_a_replacement_when_the_running_spec_is_unknown() -> None:
    steps = plan_steps(
        [want("w1", A_MORE_MEMORY)], [have("w1", A)], now=NOW, backoff={}, known_specs={}
    )
    assert [type(s) for s in steps] == [Prepare, Remove, Start]


def test_update_resources_carries_the_new_limits_and_both_hashes() -> None:
    (step,) = plan_steps(
        [want("w1", A_MORE_MEMORY)], [have("w1", A)], now=NOW, backoff={}, known_specs=KNOWN
    )
    assert isinstance(step, UpdateResources)
    assert step.resources.memory_mb == 256
    assert (step.from_hash, step.to_hash) == (spec_hash(A), spec_hash(A_MORE_MEMORY))


def test_removal_uses_the_running_specs_stop_timeout() -> None:
    slow = spec(stop_timeout_s=42)
    (step,) = plan_steps(
        [], [have("old", slow)], now=NOW, backoff={}, known_specs={spec_hash(slow): slow}
    )
    assert isinstance(step, Remove)
    assert step.timeout_s == 42


def test_restart_reason_names_the_failing_check() -> None:
    (step,) = plan_steps(
        [want("w1", A)], [have("w1", A, health="unhealthy")], now=NOW, backoff={}, known_specs=KNOWN
    )
    assert isinstance(step, Restart)
    assert "HTTP 500" in step.reason


def test_start_carries_the_desired_hash_and_spec() -> None:
    prepare, start = plan_steps([want("w1", A)], [], now=NOW, backoff={}, known_specs={})
    assert isinstance(start, Start)
    assert start.ref.spec_hash == spec_hash(A)
    assert start.ref.spec == A
    assert prepare.runtime == start.runtime == "process"


@pytest.mark.parametrize(
    ("state", "restarted"),
    [("running", True), ("unhealthy", True), ("starting", False), ("failed", False)],
)
def test_a_failing_check_restarts_only_a_running_or_unhealthy_workload(
    state: str, restarted: bool
) -> None:
    steps = plan_steps(
        [want("w1", A)],
        [have("w1", A, state=state, health="unhealthy")],
        now=NOW,
        backoff={},
        known_specs=KNOWN,
    )
    assert [type(s) for s in steps] == ([Restart] if restarted else [])


def test_a_workload_whose_running_spec_is_unknown_is_removed_with_the_default_10_s() -> None:
    (step,) = plan_steps([], [have("old", A)], now=NOW, backoff={}, known_specs={})
    assert isinstance(step, Remove)
    assert (step.timeout_s, step.reason) == (10.0, "no longer desired")


def test_an_owned_workload_is_an_immutable_value() -> None:
    owned = have("w1", A)
    assert (owned.name, owned.spec_hash) == ("w1", spec_hash(A))
    with pytest.raises(AttributeError):
        owned.runtime = "docker"  # type: ignore[misc]


def test_every_step_says_why_in_the_words_the_agent_reports() -> None:
    # These reasons reach the reported state and events: pin them word for word.
    moved = plan_steps([want("w1", A_ON_DOCKER)], [have("w1", A)], now=NOW, backoff={},
                       known_specs=KNOWN)  # fmt: skip
    assert [s.reason for s in moved if isinstance(s, Remove)] == [
        "runtime changed from process to docker"
    ]
    changed = plan_steps([want("w1", A_NEW_COMMAND)], [have("w1", A)], now=NOW, backoff={},
                         known_specs=KNOWN)  # fmt: skip
    expected = f"spec changed from {spec_hash(A)} to {spec_hash(A_NEW_COMMAND)}"
    assert {s.reason for s in changed} == {expected}
    failing = plan_steps([want("w1", A)], [have("w1", A, health="unhealthy")], now=NOW,
                         backoff={}, known_specs=KNOWN)  # fmt: skip
    assert [s.reason for s in failing] == [
        "health check failing: GET http://127.0.0.1:80/: HTTP 500"
    ]
    quiet = OwnedWorkload(
        runtime="process",
        observed=Observed(name="w1", app="app", spec_hash=spec_hash(A), state="running",
                          runtime_id="id-w1", health="unhealthy", message=""),  # type: ignore[arg-type]
    )  # fmt: skip
    (step,) = plan_steps([want("w1", A)], [quiet], now=NOW, backoff={}, known_specs=KNOWN)
    assert isinstance(step, Restart)
    assert step.reason == "unhealthy"
