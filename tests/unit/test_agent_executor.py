"""The executor: steps per workload in order, failures contained per workload."""

from __future__ import annotations

import asyncio

from edgefleet_agent.core.runtime import WorkloadRef
from edgefleet_agent.core.steps import Prepare, Remove, Restart, Start, UpdateResources
from edgefleet_agent.runtimes.simulated import SimulatedRuntime
from edgefleet_agent.service.executor import Executor, Outcome, Timeouts
from edgefleet_protocol import Resources, WorkloadSpec, spec_hash


def ref(name: str, **env: str) -> WorkloadRef:
    spec = WorkloadSpec(runtime="simulated", env=env)
    return WorkloadRef(name=name, app="a", spec=spec, spec_hash=spec_hash(spec))


def summary(outcomes: list[Outcome]) -> list[tuple[str, str, bool]]:
    return [(type(o.step).__name__, o.name, o.ok) for o in outcomes]


async def test_one_failing_workload_does_not_stop_the_others() -> None:
    rt = SimulatedRuntime()
    bad, good = ref("bad", EDGEFLEET_SIM_FAIL="permanent"), ref("good")
    outcomes = await Executor({"simulated": rt}).run(
        [
            Prepare("simulated", bad),
            Start("simulated", bad),
            Prepare("simulated", good),
            Start("simulated", good),
        ]
    )
    assert summary(outcomes) == [
        ("Prepare", "bad", True), ("Start", "bad", False),
        ("Prepare", "good", True), ("Start", "good", True),
    ]  # fmt: skip
    failed = outcomes[1]
    assert failed.permanent
    assert "simulated permanent start failure" in failed.message
    assert [o.name for o in await rt.list_owned()] == ["good"]


async def test_a_failed_step_skips_the_rest_of_its_workloads_group() -> None:
    rt = SimulatedRuntime()
    await rt.start(ref("w1"))
    broken = ref("w1", EDGEFLEET_SIM_FAIL="transient")
    steps = [Remove("simulated", "w1", "h", reason="spec changed"), Start("simulated", broken),
             Restart("simulated", "w1", "h", reason="never reached")]  # fmt: skip
    outcomes = await Executor({"simulated": rt}).run(steps)
    assert summary(outcomes) == [("Remove", "w1", True), ("Start", "w1", False)]
    assert not outcomes[1].permanent


async def test_a_step_for_a_runtime_the_agent_lacks_is_a_permanent_failure() -> None:
    (outcome,) = await Executor({}).run([Start("docker", ref("w1"))])
    assert not outcome.ok
    assert outcome.permanent
    assert "runtime docker is not enabled" in outcome.message


async def test_a_hanging_step_times_out_as_a_transient_failure() -> None:
    class Hanging(SimulatedRuntime):
        async def restart(self, name: str) -> None:
            await asyncio.sleep(10)

    rt = Hanging()
    (outcome,) = await Executor({"simulated": rt}, timeouts=Timeouts(other_s=0.05)).run(
        [Restart("simulated", "w1", "h", reason="unhealthy")]
    )
    assert (outcome.ok, outcome.permanent, outcome.message) == (
        False,
        False,
        "timed out after 0.05 s",
    )


async def test_an_unexpected_exception_is_contained() -> None:
    class Buggy(SimulatedRuntime):
        async def restart(self, name: str) -> None:
            raise KeyError("bug")

    (outcome,) = await Executor({"simulated": Buggy()}).run(
        [Restart("simulated", "w1", "h", reason="x")]
    )
    assert not outcome.ok
    assert outcome.message == "unexpected error: KeyError('bug')"


async def test_decorate_adds_agent_env_and_update_resources_reports_the_result() -> None:
    rt = SimulatedRuntime()
    seen: list[dict[str, str]] = []

    def decorate(runtime: str, r: WorkloadRef) -> WorkloadRef:
        seen.append({"runtime": runtime, **r.spec.env})
        return r

    executor = Executor({"simulated": rt}, decorate=decorate)
    await executor.run([Start("simulated", ref("w1"))])
    (outcome,) = await executor.run(
        [
            UpdateResources(
                "simulated", "w1", Resources(cpu=2, memory_mb=300), from_hash="a", to_hash="b"
            )
        ]
    )
    assert seen == [{"runtime": "simulated"}]
    assert outcome.resource_update is not None
    assert outcome.resource_update.applied
