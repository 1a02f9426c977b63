"""Vertical sizing, pure: new per-replica limits from observed usage within the auto bounds
and the node's free headroom, with a deadband and a cooldown — and placement applying a
grown size only where it fits (a resize never evicts)."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView
from edgefleet_orchestrator.placement.model import Assignment, Size, node_view_from
from edgefleet_orchestrator.placement.pipeline import place_all
from edgefleet_orchestrator.scaling.vertical import key, plan_sizes
from edgefleet_protocol import Capabilities, Reported, WorkloadReport, WorkloadUsage, spec_hash
from edgefleet_protocol.manifest import AppManifest, load_manifest
from harness.scaling_sim import Sim

NOW = 5_000.0
AUTO = {"min_cpu": 0.1, "max_cpu": 1.0, "min_memory_mb": 32, "max_memory_mb": 512}


def app(name: str = "w", **resources: Any) -> AppManifest:
    body = {
        "name": name,
        "replicas": 1,
        "workload": {
            "runtime": "simulated",
            "resources": {"cpu": 0.25, "memory_mb": 64, "auto": AUTO, **resources},
        },
    }
    return load_manifest(json.dumps(body))


def node(
    name: str,
    usage: dict[str, WorkloadUsage],
    *,
    cores: float = 4,
    memory_mb: int = 4096,
    running: bool = True,
) -> NodeRecord:
    caps = Capabilities(
        node=name, site="s1", arch="x86_64", cpu_cores=cores, memory_mb=memory_mb, disk_mb=1,
        runtimes=["simulated"],
    )  # fmt: skip
    reported = Reported(
        node=name,
        observed_generation=1,
        session=1,
        ts=NOW,
        workloads={
            w: WorkloadReport(spec_hash="sha256:x", state="running" if running else "failed",
                              since=NOW)
            for w in usage
        },
    )  # fmt: skip
    return NodeRecord(
        node=name,
        site="s1",
        state="online",
        capabilities=caps,
        reported=reported,
        telemetry=TelemetryView(workloads=MappingProxyType(usage)),
    )


def at(
    replica: str, on: str = "n1", cpu: float = 0.25, memory_mb: int = 64, a: str = "w"
) -> Assignment:
    return Assignment(replica, a, on, "s1", cpu, memory_mb)


def plan(
    usage: WorkloadUsage | None,
    *,
    current: Assignment | None = None,
    resized_at: dict[str, float] | None = None,
    manifest: AppManifest | None = None,
    **node_args: Any,
) -> tuple[Size | None, str]:
    a = current or at("w-0")
    records = {"n1": node("n1", {} if usage is None else {a.replica: usage}, **node_args)}
    result = plan_sizes(
        {"w": manifest or app()},
        [a],
        records,
        resized_at=resized_at or {},
        now=NOW,
        cooldown_s=60,
    )
    size = result.sizes.get("w", {}).get(a.replica)
    why = result.resizes[0].reason if result.resizes else result.held.get(a.replica, "")
    return size, why


@pytest.mark.parametrize(
    ("name", "usage", "expect"),
    [
        ("a throttled replica grows by a fifth of its limit and more", WorkloadUsage(cpu_pct=25),
         Size(0.36, 64)),
        ("an idle replica shrinks toward its use", WorkloadUsage(cpu_pct=2), Size(0.1, 64)),
        ("a small wobble is inside the deadband", WorkloadUsage(cpu_pct=19), None),
        ("cpu growth stops at max_cpu", WorkloadUsage(cpu_pct=300), Size(1.0, 64)),
        ("memory follows use with headroom", WorkloadUsage(memory_mb=100), Size(0.25, 130)),
        ("memory never goes below min", WorkloadUsage(memory_mb=1), Size(0.25, 32)),
        ("both dimensions move together", WorkloadUsage(cpu_pct=50, memory_mb=200),
         Size(0.72, 260)),
        ("no usage reported, nothing to size by", None, None),
    ],
)  # fmt: skip
def test_sizing_follows_observed_usage(
    name: str, usage: WorkloadUsage | None, expect: Size
) -> None:
    size, why = plan(usage)
    assert size == expect, why


def test_a_resize_explains_the_use_it_follows() -> None:
    _, why = plan(WorkloadUsage(cpu_pct=25, memory_mb=100))
    assert why == (
        "cpu 0.25 -> 0.36 cores (uses 0.25 cores, 100% of its limit); "
        "memory 64 -> 130 MB (uses 100 MB)"
    )


def test_a_replica_resized_within_the_cooldown_is_left_alone() -> None:
    recent = {key("w", "w-0"): NOW - 30}
    assert plan(WorkloadUsage(cpu_pct=25), resized_at=recent)[0] is None
    old = {key("w", "w-0"): NOW - 61}
    assert plan(WorkloadUsage(cpu_pct=25), resized_at=old)[0] == Size(0.36, 64)


def test_a_replica_that_is_not_running_is_not_sized() -> None:
    assert plan(WorkloadUsage(cpu_pct=25), running=False)[0] is None


def test_growth_is_cut_to_the_node_headroom_and_a_full_node_says_so() -> None:
    # 0.4 cores node: the replica holds 0.25, so 0.15 is free.
    size, why = plan(WorkloadUsage(cpu_pct=100), cores=0.4)
    assert size == Size(0.4, 64)
    assert why.endswith("growth cut to the room left (node n1 has 0.15 cores and 4032 MB free)")
    full = at("w-0", cpu=0.25)
    size, why = plan(WorkloadUsage(cpu_pct=100), current=full, cores=0.25)
    assert size is None
    assert why == "cannot grow: node n1 has 0 cores and 4032 MB free"


def test_a_replica_outside_new_bounds_is_brought_inside_at_once() -> None:
    big = at("w-0", cpu=2.0, memory_mb=1024)
    size, why = plan(None, current=big, resized_at={key("w", "w-0"): NOW})
    assert (size, why) == (Size(1.0, 512), "brought inside the auto bounds")


def test_apps_with_fixed_limits_are_never_sized() -> None:
    fixed = load_manifest(
        json.dumps({"name": "w", "replicas": 1, "workload": {"runtime": "simulated"}})
    )
    assert plan(WorkloadUsage(cpu_pct=300), manifest=fixed)[0] is None


def test_two_growing_replicas_on_one_node_share_its_headroom() -> None:
    usage = {"w-0": WorkloadUsage(cpu_pct=100), "w-1": WorkloadUsage(cpu_pct=100)}
    records = {"n1": node("n1", usage, cores=0.7)}
    result = plan_sizes(
        {"w": app()}, [at("w-0"), at("w-1")], records, resized_at={}, now=NOW, cooldown_s=60
    )
    grown = result.sizes["w"]
    assert grown == {"w-0": Size(0.45, 64)}, "the first takes the 0.2 cores left"
    assert result.held == {"w-1": "cannot grow: node n1 has 0 cores and 3968 MB free"}


# -- placement applies sizes ------------------------------------------------------------------


def views(cores: float) -> list[Any]:
    caps = Capabilities(
        node="n1", site="s1", arch="x86_64", cpu_cores=cores, memory_mb=4096, disk_mb=1,
        runtimes=["simulated"],
    )  # fmt: skip
    return [node_view_from(caps, ready=True)]


def test_placement_keeps_each_sized_replica_at_its_own_size() -> None:
    two = app().model_copy(update={"replicas": 2})
    current = [at("w-0", cpu=0.5), at("w-1", cpu=0.3)]
    result = place_all([two], views(4), current)["w"]
    assert [(a.replica, a.cpu) for a in result.assignments] == [("w-0", 0.5), ("w-1", 0.3)]
    assert result.kept == ("w-0", "w-1")


def test_placement_applies_a_grown_size_that_fits_and_ignores_one_that_does_not() -> None:
    current = [at("w-0", cpu=0.5)]
    fits = place_all([app()], views(4), current, sizes={"w": {"w-0": Size(0.8, 64)}})["w"]
    assert fits.assignments[0].cpu == 0.8
    other = Assignment("x-0", "x", "n1", "s1", 3.3, 64)  # leaves 0.2 free on a 4-core node
    crowded = place_all([app()], views(4), [*current, other], sizes={"w": {"w-0": Size(0.8, 64)}})[
        "w"
    ]
    assert crowded.assignments[0].cpu == 0.5, "a resize that does not fit is not applied"
    assert crowded.kept == ("w-0",) and not crowded.moved, "and never evicts"


def test_a_moved_replica_keeps_its_live_size_where_it_fits() -> None:
    # n1 is lost beyond grace; the replica grown to 0.8 CPU / 256 MB restarts on n2 at that
    # size, not at the manifest's 0.25 / 64 (a move must not undo vertical sizing).
    caps = [
        Capabilities(node=n, site="s1", arch="x86_64", cpu_cores=c, memory_mb=4096, disk_mb=1,
                     runtimes=["simulated"])
        for n, c in (("n1", 4), ("n2", 4), ("tiny", 0.5))
    ]  # fmt: skip
    nodes = [node_view_from(c, ready=c.node != "n1") for c in caps]
    grown = [at("w-0", on="n1", cpu=0.8, memory_mb=256)]
    gone = {"n1": 600.0}
    moved = place_all([app()], nodes[:2], grown, offline_for_s=gone)["w"]
    assert moved.moves["w-0"] == ("n1", "n2")
    assert (moved.assignments[0].cpu, moved.assignments[0].memory_mb) == (0.8, 256)
    # Where the live size does not fit, the manifest's size still lets it run.
    small = place_all([app()], [nodes[0], nodes[2]], grown, offline_for_s=gone)["w"]
    assert small.moves["w-0"] == ("n1", "tiny")
    assert (small.assignments[0].cpu, small.assignments[0].memory_mb) == (0.25, 64)


def test_a_resize_reaches_the_replicas_desired_spec_and_the_audit_trail() -> None:
    sim = Sim(apps={"w": app()})
    sim.join("n1")
    sim.settle()
    before = sim.docs["n1"].workloads[0]
    assert before.spec.resources.auto is None, "agents never see auto"
    sim.usage("w-0", cpu_pct=25.0)
    result = sim.step()
    (after,) = sim.docs["n1"].workloads
    assert (after.spec.resources.cpu, after.spec.resources.memory_mb) == (0.36, 64)
    assert after.spec_hash == spec_hash(after.spec) != before.spec_hash
    assert after.spec.model_copy(update={"resources": before.spec.resources}) == before.spec
    (note,) = [n for n in result.notes if n.kind == "resources"]
    assert note.details["cpu"] == [0.25, 0.36]
    assert result.control.resized_at == {key("w", "w-0"): sim.now}
    sim.usage("w-0", cpu_pct=36.0)
    assert "w" not in {n.app for n in sim.step().notes}, "inside the cooldown"


def test_a_resize_of_a_replica_scaled_away_in_the_same_pass_is_not_reported() -> None:
    # Both replicas are sized up, but the same pass scales the app to one: only the resize
    # placement applied is a note and a cooldown entry (the fleet pass's _applied).
    sim = Sim(apps={"w": app().model_copy(update={"replicas": 2})})
    sim.join("n1", cores=4)
    sim.settle()
    for replica in ("w-0", "w-1"):
        sim.usage(replica, cpu_pct=25.0)
    sim.apps["w"] = app()
    result = sim.step()
    assert [(a.replica, a.cpu) for a in result.assignments] == [("w-0", 0.36)]
    assert [n.details["replica"] for n in result.notes if n.kind == "resources"] == ["w-0"]
    assert result.control.resized_at == {key("w", "w-0"): sim.now}
