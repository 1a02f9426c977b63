"""The simulated runtime: the seam in memory, deterministic, adoptable across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgefleet_agent.core.runtime import PermanentRuntimeError, TransientRuntimeError, WorkloadRef
from edgefleet_agent.runtimes.simulated import SimulatedRuntime
from edgefleet_protocol import Resources, WorkloadSpec, spec_hash


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ref(name: str = "w1", **env: str) -> WorkloadRef:
    spec = WorkloadSpec(runtime="simulated", env=env, resources=Resources(cpu=0.5, memory_mb=100))
    return WorkloadRef(name=name, app="a", spec=spec, spec_hash=spec_hash(spec))


async def test_a_started_workload_is_starting_until_its_delay_passes() -> None:
    clock = Clock()
    rt = SimulatedRuntime(start_delay_s=2.0, clock=clock)
    started = await rt.start(ref())
    assert started.state == "starting"
    clock.now += 1.9
    assert [o.state for o in await rt.list_owned()] == ["starting"]
    clock.now += 0.1
    (observed,) = await rt.list_owned()
    assert (observed.state, observed.since) == ("running", 102.0)


async def test_the_same_seed_gives_the_same_failures_and_ids() -> None:
    async def run(seed: int) -> list[str]:
        rt = SimulatedRuntime(seed=seed, failure_rate=0.5)
        outcomes = []
        for i in range(12):
            try:
                outcomes.append((await rt.start(ref(f"w{i}"))).runtime_id)
            except TransientRuntimeError:
                outcomes.append("failed")
        return outcomes

    first, again, other = await run(7), await run(7), await run(8)
    assert first == again
    assert first != other
    assert "failed" in first
    assert any(o != "failed" for o in first)


async def test_failure_knobs_in_the_spec_raise_their_error_kind() -> None:
    rt = SimulatedRuntime()
    with pytest.raises(PermanentRuntimeError):
        await rt.start(ref(EDGEFLEET_SIM_FAIL="permanent"))
    with pytest.raises(TransientRuntimeError):
        await rt.start(ref(EDGEFLEET_SIM_FAIL="transient"))
    assert await rt.list_owned() == []


async def test_a_crash_is_restarted_per_restart_policy() -> None:
    rt = SimulatedRuntime()
    await rt.start(ref())
    rt.crash("w1", exit_code=3)
    (observed,) = await rt.list_owned()
    assert (observed.state, observed.restarts, observed.exit_code) == ("running", 1, 3)
    never = WorkloadSpec(runtime="simulated", restart="never")
    await rt.start(WorkloadRef("w2", "a", never, spec_hash(never)))
    rt.crash("w2", exit_code=3)
    states = {o.name: (o.state, o.message) for o in await rt.list_owned()}
    assert states["w2"] == ("failed", "exited with code 3")


async def test_a_restarted_runtime_adopts_its_table_from_the_state_file(tmp_path: Path) -> None:
    table = tmp_path / "sim.json"
    first = SimulatedRuntime(state_file=table)
    started = await first.start(ref())
    await first.close()
    second = SimulatedRuntime(state_file=table)
    (adopted,) = await second.list_owned()
    assert (adopted.runtime_id, adopted.spec_hash) == (started.runtime_id, started.spec_hash)
    await second.remove("w1")
    assert await SimulatedRuntime(state_file=table).list_owned() == []


async def test_exec_fails_for_failing_health_and_stopped_workloads() -> None:
    rt = SimulatedRuntime()
    await rt.start(ref("good"))
    await rt.start(ref("sick", EDGEFLEET_SIM_HEALTH="fail"))
    assert (await rt.exec("good", ["check"], timeout_s=1)).exit_code == 0
    assert (await rt.exec("good", ["false"], timeout_s=1)).exit_code == 1
    assert (await rt.exec("sick", ["check"], timeout_s=1)).exit_code == 1
    assert (await rt.exec("missing", ["check"], timeout_s=1)).exit_code == 126


async def test_usage_is_steady_and_within_limits() -> None:
    rt = SimulatedRuntime(seed=3)
    await rt.start(ref())
    first, second = await rt.usage(), await rt.usage()
    assert first == second
    assert first["w1"].cpu_pct is not None and 0 < first["w1"].cpu_pct <= 50
    assert first["w1"].memory_mb is not None and 0 < first["w1"].memory_mb <= 100


async def test_resources_update_live_and_duplicates_are_refused() -> None:
    rt = SimulatedRuntime()
    await rt.start(ref())
    update = await rt.update_resources("w1", Resources(cpu=1, memory_mb=200))
    assert update.applied
    assert rt.table()["w1"].memory_mb == 200
    with pytest.raises(PermanentRuntimeError, match="already exists"):
        await rt.start(ref())
    with pytest.raises(PermanentRuntimeError):
        await rt.restart("missing")
