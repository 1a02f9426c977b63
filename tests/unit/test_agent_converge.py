"""Converge passes against the simulated runtime and a real local store, no broker."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from edgefleet_agent.core.runtime import ResourceUpdate
from edgefleet_agent.runtimes.simulated import SimulatedRuntime
from edgefleet_agent.service import converge
from edgefleet_agent.service.converge import Converger
from edgefleet_agent.service.health_watch import HealthWatch
from edgefleet_agent.store import LocalStore
from edgefleet_protocol import Desired, DesiredWorkload, Resources, WorkloadSpec, spec_hash


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class RelabellingRuntime(SimulatedRuntime):
    """Like the process runtime: after a live update it shows a hash recomputed from the
    spec it stores (which includes the agent's extra env), not the desired one."""

    async def update_resources(self, name: str, resources: Resources) -> ResourceUpdate:
        update = await super().update_resources(name, resources)
        row = self._table[name]
        self._table[name] = replace(row, spec_hash="sha256:recomputed")
        return update


def want(name: str, **spec: Any) -> DesiredWorkload:
    parsed = WorkloadSpec.model_validate({"runtime": "simulated", **spec})
    return DesiredWorkload(name=name, app="a", spec=parsed, spec_hash=spec_hash(parsed))


def doc(generation: int, *workloads: DesiredWorkload) -> Desired:
    return Desired(node="n1", generation=generation, issued_at=1.0, workloads=list(workloads))


def make(tmp_path: Path, runtime: SimulatedRuntime, clock: Clock, events: list[str]) -> Converger:
    async def sink(level: str, kind: str, message: str, **details: object) -> None:
        events.append(f"{kind}: {message}")

    return Converger(
        runtimes={"simulated": runtime},
        store=LocalStore(tmp_path),
        health=HealthWatch(clock=clock, notify=lambda *a: _noop()),
        events=sink,
        metrics_path=lambda name: str(tmp_path / f"{name}.json"),
        reconcile_interval_s=10,
        clock=clock,
    )


async def _noop() -> None:
    return None


async def nothing() -> None:
    return None


async def test_a_stored_document_is_converged_to_without_any_broker(tmp_path: Path) -> None:
    clock, events = Clock(), []
    first = make(tmp_path, SimulatedRuntime(), clock, events)
    assert first.accept(doc(1, want("w1"), want("w2"))) is None
    first.store.close()
    runtime = SimulatedRuntime()
    restarted = make(tmp_path, runtime, clock, events)  # a new agent process, same state dir
    await restarted.once(nothing)
    assert sorted(runtime.table()) == ["w1", "w2"]
    assert restarted.observed_generation == 1
    assert {r.state for r in restarted.reports().values()} == {"running"}


async def test_a_second_pass_with_nothing_changed_touches_nothing(tmp_path: Path) -> None:
    clock, events = Clock(), []
    runtime = SimulatedRuntime()
    converger = make(tmp_path, runtime, clock, events)
    converger.accept(doc(1, want("w1")))
    await converger.once(nothing)
    before = runtime.table()
    delay = await converger.once(nothing)
    assert runtime.table() == before
    assert delay == 10


async def test_the_agents_env_reaches_the_runtime_but_not_the_hash(tmp_path: Path) -> None:
    clock, events = Clock(), []
    runtime = SimulatedRuntime()
    converger = make(tmp_path, runtime, clock, events)
    converger.accept(doc(1, want("w1")))
    await converger.once(nothing)
    (owned,) = converger.owned
    assert owned.spec_hash == want("w1").spec_hash


async def test_a_live_resource_update_is_not_undone_when_the_runtime_relabels(
    tmp_path: Path,
) -> None:
    clock, events = Clock(), []
    runtime = RelabellingRuntime()
    converger = make(tmp_path, runtime, clock, events)
    converger.accept(doc(1, want("w1")))
    await converger.once(nothing)
    instance = runtime.table()["w1"].runtime_id
    bigger = want("w1", resources={"memory_mb": 512})
    converger.accept(doc(2, bigger))
    await converger.once(nothing)
    await converger.once(nothing)
    assert runtime.table()["w1"].runtime_id == instance  # no replacement, then or later
    assert converger.reports()["w1"].spec_hash == bigger.spec_hash
    # The mapping survives an agent restart.
    converger.store.close()
    again = make(tmp_path, runtime, clock, events)
    await again.once(nothing)
    assert runtime.table()["w1"].runtime_id == instance
    assert again.reports()["w1"].spec_hash == bigger.spec_hash


async def test_a_failing_workload_backs_off_and_the_others_run(tmp_path: Path) -> None:
    clock, events = Clock(), []
    runtime = SimulatedRuntime()
    converger = make(tmp_path, runtime, clock, events)
    converger.accept(doc(1, want("bad", env={"EDGEFLEET_SIM_FAIL": "transient"}), want("good")))
    delay = await converger.once(nothing)
    assert sorted(runtime.table()) == ["good"]
    report = converger.reports()["bad"]
    assert report.state == "failed"
    assert "start failed" in report.message
    assert delay == 1.0  # the retry is due after the first backoff step
    assert any(e.startswith("workload-failed: bad") for e in events)
    clock.now += 0.5
    await converger.once(nothing)
    assert converger.backoff["bad"].failures == 1  # still waiting: no second attempt yet
    clock.now += 0.6
    await converger.once(nothing)
    assert converger.backoff["bad"].failures == 2


async def test_an_unavailable_runtime_is_neither_started_nor_cleaned(tmp_path: Path) -> None:
    class Down(SimulatedRuntime):
        async def list_owned(self) -> list[Any]:
            raise OSError("daemon unavailable")

    clock, events = Clock(), []
    runtime = Down()
    converger = make(tmp_path, runtime, clock, events)
    converger.accept(doc(1, want("w1")))
    await converger.once(nothing)
    assert runtime.table() == {}
    report = converger.reports()["w1"]
    assert (report.state, report.message) == (
        "pending",
        "runtime simulated unavailable: daemon unavailable",
    )


async def test_a_report_made_while_the_last_one_is_unacknowledged_goes_out_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the final ``running`` report was dropped while the ``starting`` one was
    still waiting for its acknowledgement, so a converged node reported ``starting`` until
    its next change (seconds to tens of seconds in a busy simulated fleet)."""
    monkeypatch.setattr(converge, "PUBLISH_WAIT_S", 0.01)
    c = make(tmp_path, SimulatedRuntime(), Clock(), [])
    state = {"now": "starting"}
    acked = asyncio.Event()
    sent: list[str] = []
    two_sent = asyncio.Event()

    async def publish() -> None:
        carried = state["now"]  # a reported publish reads the state when it starts
        if not sent and not acked.is_set():
            await acked.wait()  # the broker has not acknowledged the first one yet
        sent.append(carried)
        if len(sent) == 2:
            two_sent.set()

    await c.bounded(publish(), slot="reported")
    assert sent == [], "the first publish is still out"
    state["now"] = "running (superseded)"
    await c.bounded(publish(), slot="reported")
    state["now"] = "running"
    await c.bounded(publish(), slot="reported")
    acked.set()
    await asyncio.wait_for(two_sent.wait(), timeout=30)
    assert sent == ["starting", "running"]
