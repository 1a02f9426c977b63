"""Horizontal autoscaling decisions, pure and table-driven: the tolerance band, the HPA
rule and its bounds, both cooldowns (and the lull a scale-down needs), missing data, the
capacity cap, and what is remembered and announced."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.scaling.autoscale import (
    Observation,
    ScaleMemory,
    Verdict,
    cap_to_placed,
    decide,
    observe,
    settle,
    worth_an_event,
)
from edgefleet_protocol import Reported, WorkloadReport, WorkloadUsage, validate
from edgefleet_protocol.manifest import AppManifest, Autoscale, load_manifest
from harness.scaling_sim import Sim

NOW = 10_000.0


def spec(**fields: Any) -> Autoscale:
    body: dict[str, Any] = {
        "metric": "queue.depth",
        "target": 10,
        "min": 1,
        "max": 6,
        "tolerance": 0.1,
        "scale_up_cooldown_s": 30,
        "scale_down_cooldown_s": 120,
    }
    body.update(fields)
    return validate(Autoscale, body)


def seen(value: float | None, samples: int = 2) -> Observation:
    return Observation(value, samples if value is not None else 0, running=samples)


@dataclass(frozen=True)
class Case:
    name: str
    current: int
    value: float | None
    expect_replicas: int
    expect_state: str
    memory: ScaleMemory = field(default_factory=ScaleMemory)
    spec_fields: tuple[tuple[str, Any], ...] = ()


CASES = [
    Case("inside the band nothing moves", 3, 10.9, 3, "steady"),
    Case("the band is inclusive at its edge", 3, 9.0, 3, "steady"),
    Case("above the band scales up by the HPA rule", 2, 25.0, 5, "scaled-up"),
    Case("an exact ratio does not round up a float's last bit", 2, 15.0, 3, "scaled-up"),
    Case("a scale-up is held to max", 2, 100.0, 6, "scaled-up"),
    Case("at max a high metric changes nothing", 6, 100.0, 6, "steady"),
    Case(
        "a scale-up waits for its cooldown after the last change",
        2, 25.0, 2, "cooldown",
        memory=ScaleMemory(last_scaled_at=NOW - 10, last_direction="up"),
    ),
    Case(
        "a scale-up after its cooldown goes ahead",
        2, 25.0, 5, "scaled-up",
        memory=ScaleMemory(last_scaled_at=NOW - 31, last_direction="up"),
    ),
    Case("a first low reading only starts the lull", 4, 2.0, 4, "cooldown"),
    Case(
        "a lull as long as the down cooldown scales down",
        4, 2.0, 1, "scaled-down",
        memory=ScaleMemory(below_since=NOW - 120),
    ),
    Case(
        "a long lull still waits for the down cooldown since the last change",
        4, 5.0, 4, "cooldown",
        memory=ScaleMemory(below_since=NOW - 500, last_scaled_at=NOW - 60, last_direction="up"),
    ),
    Case(
        "a scale-down is held to min",
        3, 0.1, 2, "scaled-down",
        memory=ScaleMemory(below_since=NOW - 999),
        spec_fields=(("min", 2),),
    ),
    Case("no reading holds the count", 3, None, 3, "no-data"),
    Case(
        "a count below new bounds is raised at once, cooldown or not",
        1, None, 2, "scaled-up",
        memory=ScaleMemory(last_scaled_at=NOW - 1, last_direction="down"),
        spec_fields=(("min", 2),),
    ),
    Case("a count above new bounds is lowered at once", 9, 10.0, 6, "scaled-down"),
    Case(
        "a zero tolerance reacts to any difference",
        4, 10.5, 5, "scaled-up",
        spec_fields=(("tolerance", 0.0),),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_autoscale_decisions(case: Case) -> None:
    verdict, _ = decide(
        spec(**dict(case.spec_fields)),
        current=case.current,
        observation=seen(case.value),
        memory=case.memory,
        now=NOW,
    )
    assert (verdict.replicas, verdict.state) == (case.expect_replicas, case.expect_state), (
        verdict.reason
    )
    assert verdict.current == case.current


def test_every_verdict_explains_itself_with_the_observed_value_and_the_target() -> None:
    verdict, _ = decide(spec(), current=2, observation=seen(25.0), memory=ScaleMemory(), now=NOW)
    assert verdict.reason == (
        "queue.depth 25 (average of 2 replicas) vs target 10 asks for 5 replicas: scaling up 2 -> 5"
    )
    held, _ = decide(spec(), current=2, observation=seen(99.0), memory=ScaleMemory(), now=NOW)
    assert "asks for 20 replicas, held to max 6" in held.reason


def test_the_lull_is_remembered_across_evaluations_and_broken_by_a_high_reading() -> None:
    low = seen(2.0)
    first, memory = decide(spec(), current=4, observation=low, memory=ScaleMemory(), now=NOW)
    assert (first.state, memory.below_since) == ("cooldown", NOW)
    _, memory = decide(spec(), current=4, observation=seen(10.0), memory=memory, now=NOW + 60)
    assert memory.below_since is None, "a reading inside the band ends the lull"
    again, memory = decide(spec(), current=4, observation=low, memory=memory, now=NOW + 61)
    assert again.state == "cooldown" and memory.below_since == NOW + 61
    done, _ = decide(spec(), current=4, observation=low, memory=memory, now=NOW + 181)
    assert (done.state, done.replicas) == ("scaled-down", 1)


def test_a_metric_nobody_reports_is_named_with_what_the_replicas_do_report() -> None:
    observation = Observation(None, 0, running=3, reported_metrics=("cpu_pct", "queue_depth"))
    verdict, _ = decide(spec(), current=3, observation=observation, memory=ScaleMemory(), now=NOW)
    assert verdict.state == "no-data"
    assert verdict.reason == (
        "none of the 3 replicas running reports metric 'queue.depth' "
        "(they report: cpu_pct, queue_depth)"
    )
    nothing_runs = Observation(None, 0, running=0)
    verdict, _ = decide(spec(), current=3, observation=nothing_runs, memory=ScaleMemory(), now=NOW)
    assert verdict.reason == "no running replica to read queue.depth from yet"


def scale_up(current: int, to: int) -> Verdict:
    return Verdict(current, to, to, "scaled-up", "x asks for 6 replicas: scaling up", 30.0, 2)


@pytest.mark.parametrize(
    ("current", "wanted", "placed", "expect"),
    [
        (2, 6, 6, 6),  # everything fits
        (2, 6, 4, 4),  # capped to what was placed
        (2, 6, 2, 2),  # nothing new fits: stays where it is
        (3, 6, 1, 3),  # fewer than the current count fit: never below it
    ],
)
def test_a_scale_up_is_capped_to_what_placement_can_place(
    current: int, wanted: int, placed: int, expect: int
) -> None:
    capped = cap_to_placed(scale_up(current, wanted), placed=placed, reasons=["3 nodes: full"])
    assert capped.replicas == expect
    if expect < wanted:
        assert capped.state == "limited"
        assert capped.limited_by == ("3 nodes: full",)
        assert capped.reason.endswith(f"only {expect} can be placed ({wanted - expect} short)")
    else:
        assert capped.state == "scaled-up"


def test_a_scale_down_is_never_capped() -> None:
    down = Verdict(5, 2, 2, "scaled-down", "low", 1.0, 2)
    assert cap_to_placed(down, placed=0, reasons=[]) is down


def test_only_a_change_that_survives_the_cap_starts_the_cooldowns() -> None:
    before = ScaleMemory(last_scaled_at=NOW - 500, last_direction="down")
    changed = settle(before, scale_up(2, 4), NOW)
    assert (changed.last_scaled_at, changed.last_direction) == (NOW, "up")
    nothing = cap_to_placed(scale_up(2, 4), placed=2, reasons=["full"])
    kept = settle(before, nothing, NOW)
    assert (kept.last_scaled_at, kept.last_state) == (NOW - 500, "limited")


def test_changes_are_always_announced_and_stuck_states_once() -> None:
    limited = cap_to_placed(scale_up(2, 4), placed=2, reasons=["full"])
    assert worth_an_event(ScaleMemory(), scale_up(2, 4))
    assert worth_an_event(ScaleMemory(last_state="steady"), limited)
    assert not worth_an_event(ScaleMemory(last_state="limited"), limited)
    steady = Verdict(2, 2, 2, "steady", "fine", 10.0, 2)
    assert not worth_an_event(ScaleMemory(last_state="cooldown"), steady)


# -- observing the metric ---------------------------------------------------------------------


def record(
    node: str,
    usage: dict[str, WorkloadUsage],
    states: dict[str, str],
    *,
    state: str = "online",
) -> NodeRecord:
    reported = Reported(
        node=node,
        observed_generation=1,
        session=1,
        ts=NOW,
        workloads={
            name: WorkloadReport(spec_hash="sha256:x", state=s, since=NOW)  # type: ignore[arg-type]
            for name, s in states.items()
        },
    )
    return NodeRecord(
        node=node,
        site="s1",
        state=state,  # type: ignore[arg-type]
        reported=reported,
        telemetry=TelemetryView(workloads=MappingProxyType(usage)),
    )


def at(replica: str, node: str) -> Assignment:
    return Assignment(replica, "q", node, "s1", 0.1, 64)


def test_the_metric_is_averaged_over_running_replicas_on_online_nodes() -> None:
    nodes = {
        "n1": record(
            "n1",
            {"q-0": WorkloadUsage(metrics={"queue.depth": 30}), "q-1": WorkloadUsage(cpu_pct=5)},
            {"q-0": "running", "q-1": "running"},
        ),
        "n2": record("n2", {"q-2": WorkloadUsage(metrics={"queue.depth": 10})}, {"q-2": "running"}),
        "n3": record("n3", {"q-3": WorkloadUsage(metrics={"queue.depth": 99})}, {"q-3": "failed"}),
        "n4": record(
            "n4",
            {"q-4": WorkloadUsage(metrics={"queue.depth": 99})},
            {"q-4": "running"},
            state="offline",
        ),
    }
    assignments = [at("q-0", "n1"), at("q-1", "n1"), at("q-2", "n2"), at("q-3", "n3"),
                   at("q-4", "n4")]  # fmt: skip
    observation = observe("queue.depth", assignments, nodes)
    assert (observation.value, observation.samples, observation.running) == (20.0, 2, 3)
    assert observation.reported_metrics == ("cpu_pct", "queue.depth")
    cpu = observe("cpu_pct", assignments, nodes)
    assert (cpu.value, cpu.samples) == (5.0, 1)


# -- through whole passes: the manifest count, the capacity cap, the notes ---------------------


def autoscaled(**auto: Any) -> AppManifest:
    body = {
        "name": "q",
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.5, "memory_mb": 64}},
        "placement": {"max_per_node": 1},
        "autoscale": {"metric": "depth", "target": 10, "max": 5, "scale_up_cooldown_s": 0,
                      "scale_down_cooldown_s": 0, **auto},
    }  # fmt: skip
    return load_manifest(json.dumps(body))


def test_a_pass_scales_the_manifest_and_explains_it_in_a_note() -> None:
    sim = Sim(apps={"q": autoscaled()})
    for n in ("n1", "n2", "n3", "n4", "n5"):
        sim.join(n)
    sim.settle()
    assert sim.where("q") == {"q-0": sim.where("q")["q-0"]}, "starts at min 1"
    sim.usage("q-0", metrics={"depth": 30})
    result = sim.step()
    assert result.rescaled["q"].replicas == 3
    assert len(sim.where("q")) == 3
    (note,) = [n for n in result.notes if n.kind == "autoscale"]
    assert note.message == (
        "autoscale q: 1 -> 3 replicas: depth 30 (average of 1 replica) vs target 10 asks for "
        "3 replicas: scaling up 1 -> 3"
    )
    assert (note.details["observed"], note.details["target"], note.details["to"]) == (30, 10, 3)


def test_a_scale_up_past_capacity_stops_at_what_fits_and_says_why() -> None:
    sim = Sim(apps={"q": autoscaled()})
    for n in ("n1", "n2"):
        sim.join(n)
    sim.settle()
    sim.usage("q-0", metrics={"depth": 50})
    result = sim.step()
    assert result.rescaled["q"].replicas == 2, "max_per_node 1 on two nodes"
    verdict = result.verdicts["q"]
    assert (verdict.state, verdict.wanted, verdict.replicas) == ("limited", 5, 2)
    assert verdict.limited_by == ("2 nodes: max 1 replica per node",)
    assert result.placements["q"].unplaced == (), "the shortfall is not an unplaced replica"
    sim.report(settle=True)
    again = sim.step()
    assert "q" not in again.rescaled
    assert [n.kind for n in again.notes] == [], "a limit already announced is not repeated"
