"""The reconcile pass's own small rules (reconcile/fleet_pass.py), each a surviving mutant of
`make mutate`: a deleted app's replicas go with a note saying so, placement is timed only
with a timer, what a pass changed is described, offline clocks never run negative, nodes
without capabilities are skipped (not the end of the list), and the knobs' defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator

from edgefleet_orchestrator.fleet.records import NodeRecord
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.fleet_pass import (
    Control,
    FleetView,
    Knobs,
    PassResult,
    node_views,
    offline_durations,
    reconcile,
)
from edgefleet_orchestrator.scaling.rebalance import RebalancePlan
from edgefleet_orchestrator.scaling.vertical import DEFAULT_COOLDOWN_S, key
from edgefleet_protocol import Capabilities, NodeStatus
from edgefleet_protocol.manifest import AppManifest, load_manifest
from edgefleet_protocol.topics import TopicKind


def web(replicas: int = 2) -> AppManifest:
    return load_manifest(json.dumps({
        "name": "web", "replicas": replicas,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.25, "memory_mb": 64}},
    }))  # fmt: skip


def caps(node: str) -> Capabilities:
    return Capabilities(node=node, site="s1", arch="arm64", cpu_cores=4, memory_mb=1024,
                        disk_mb=8000, runtimes=["simulated"])  # fmt: skip


def registry(*names: str) -> Registry:
    reg = Registry()
    for name in names:
        reg.ingest(TopicKind.NODE_CAPABILITIES, "s1", name, caps(name), 0.0)
        status = NodeStatus(node=name, site="s1", state="online", session=1, since=1.0)
        reg.ingest(TopicKind.NODE_STATUS, "s1", name, status, 0.0)
    return reg


def view(**over: object) -> FleetView:
    base: dict[str, object] = {
        "apps": {"web": web()}, "nodes": registry("n1", "n2").nodes, "assignments": [],
        "published": {}, "now": 10.0, "started_at": 0.0,
    }  # fmt: skip
    base.update(over)
    return FleetView(**base)  # type: ignore[arg-type]


def test_a_pass_with_no_knobs_does_not_rebalance_or_time_anything() -> None:
    knobs = Knobs()
    assert (knobs.resize_cooldown_s, knobs.rebalance, knobs.rebalance_budget) == (
        DEFAULT_COOLDOWN_S, False, 0,
    )  # fmt: skip
    assert (knobs.timer, knobs.memo, knobs.specs) == (None, None, None)
    plain = view()
    assert (plain.seed, plain.control, plain.rollouts) == (0, Control(), {})
    result = reconcile(plain)
    assert result.placement_s == 0.0
    bare = PassResult(placements={}, assignments=(), documents=[])
    assert (bare.events, bare.control, bare.rescaled, bare.verdicts, bare.drains) == (
        [], Control(), {}, {}, {},
    )  # fmt: skip
    assert (bare.notes, bare.rebalance, bare.placement_s, bare.rollouts) == (
        [], RebalancePlan(), 0.0, {},
    )  # fmt: skip


def test_placement_is_timed_with_the_knobs_timer() -> None:
    ticks: Iterator[float] = iter([100.0, 102.5])
    result = reconcile(view(knobs=Knobs(timer=lambda: next(ticks))))
    assert result.placement_s == 2.5


def test_a_deleted_apps_replicas_are_removed_with_an_event_naming_each() -> None:
    orphan = Assignment(replica="old-0", app="old", node="n1", site="s1", cpu=0.25, memory_mb=64)
    result = reconcile(view(assignments=[orphan]))
    assert "app old was deleted: removing replica old-0 from node n1" in result.events
    assert result.assignments_of("old") == ()
    assert len(result.assignments_of("web")) == 2
    assert {a.app for a in result.assignments} == {"web"}


def test_a_pass_describes_what_placement_changed_and_nothing_when_nothing_did() -> None:
    first = reconcile(view())
    described = [e for e in first.events if e.startswith("placement ")]
    assert described == [f"placement {first.placements['web']}"]
    again = reconcile(view(assignments=list(first.assignments)))
    assert not [e for e in again.events if e.startswith("placement")]


def test_offline_clocks_start_at_zero_and_count_from_the_orchestrators_start() -> None:
    nodes = dict(registry("n1").nodes)
    nodes["n2"] = NodeRecord(node="n2", site="s1", state="offline", offline_since=10.0)
    nodes["n3"] = NodeRecord(node="n3", site="s1", state="stale")  # no offline_since
    held = Assignment(replica="web-9", app="web", node="n9", site="s1", cpu=0.25, memory_mb=64)
    gone = offline_durations(view(nodes=nodes, assignments=[held], now=10.0, started_at=4.0))
    assert gone == {"n2": 0.0, "n3": 6.0, "n9": 6.0}
    assert offline_durations(view(nodes=nodes, assignments=[held], now=4.0, started_at=4.0)) == {
        "n2": 0.0, "n3": 0.0, "n9": 0.0,
    }  # fmt: skip


def test_node_views_skip_nodes_without_capabilities_and_sort_by_name() -> None:
    nodes = {"z": NodeRecord(node="z", site="s1", state="online"), **registry("n2", "n1").nodes}
    assert [v.node for v in node_views(nodes)] == ["n1", "n2"]


def test_every_reconcile_module_exports_names_it_has() -> None:
    import importlib
    import pkgutil

    import edgefleet_orchestrator.reconcile as package

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        names = vars(module).get("__all__", ())  # a module that sets it sets a list
        assert isinstance(names, list | tuple), module.__name__
        assert all(hasattr(module, n) for n in names), module.__name__


def test_resize_times_are_kept_for_live_replicas_only() -> None:
    first = reconcile(view())
    live = first.assignments[0]
    times = {key(live.app, live.replica): 5.0, key("gone", "gone-0"): 1.0}
    again = reconcile(view(assignments=list(first.assignments), control=Control(resized_at=times)))
    assert again.control.resized_at == {key(live.app, live.replica): 5.0}
