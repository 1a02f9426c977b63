"""The placement pass: keep, move, scale, daemon, spread, bin-pack, capacity, reasons."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from edgefleet_orchestrator.placement import (
    AppPlacement,
    Assignment,
    NodeView,
    node_view_from,
    place_all,
    place_app,
)
from edgefleet_protocol import Capabilities, Unplaced, validate
from edgefleet_protocol.manifest import AppManifest, replica_name


def make_app(
    name: str = "web",
    *,
    replicas: int | None = 3,
    mode: str = "replicated",
    cpu: float = 0.5,
    memory_mb: int = 256,
    disconnect: dict[str, Any] | None = None,
    **placement: Any,
) -> AppManifest:
    data: dict[str, Any] = {
        "name": name,
        "mode": mode,
        "workload": {
            "runtime": "process",
            "command": ["sleep", "infinity"],
            "resources": {"cpu": cpu, "memory_mb": memory_mb},
        },
        "placement": placement,
        "disconnect": disconnect or {},
    }
    if replicas is not None:
        data["replicas"] = replicas
    return validate(AppManifest, data, forbid_unknown=True)


def make_node(name: str, site: str = "s1", **fields: Any) -> NodeView:
    base: dict[str, Any] = {
        "node": name,
        "site": site,
        "ready": True,
        "cordoned": False,
        "arch": "aarch64",
        "runtimes": frozenset({"process"}),
        "cpu_cores": 4.0,
        "memory_mb": 4096,
        "region": "eu",
    }
    base.update(fields)
    return NodeView(**base)


def fleet(count: int, sites: int = 1, **fields: Any) -> list[NodeView]:
    return [make_node(f"gw-{i}", f"s{i % sites}", **fields) for i in range(count)]


def where(result: AppPlacement) -> dict[str, str]:
    return {a.replica: a.node for a in result.assignments}


def assign(app: AppManifest, replica: str, node: NodeView) -> Assignment:
    res = app.workload.resources
    return Assignment(replica, app.name, node.node, node.site, res.cpu, res.memory_mb)


def check_capacity(nodes: Sequence[NodeView], assignments: Sequence[Assignment]) -> None:
    cpu: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    for a in assignments:
        cpu[a.node] += round(a.cpu * 1000)
        memory[a.node] += a.memory_mb
    for node in nodes:
        assert cpu[node.node] <= round(node.cpu_cores * 1000), node.node
        assert memory[node.node] <= node.memory_mb, node.node


# -- determinism ------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_placement_whatever_the_node_order() -> None:
    app = make_app(replicas=7)
    nodes = fleet(20, sites=3)
    first = place_app(app, nodes=nodes, assignments=[], seed=11)
    shuffled = nodes[:]
    random.Random(3).shuffle(shuffled)
    again = place_app(app, nodes=shuffled, assignments=[], seed=11)
    assert first == again
    assert len(first.assignments) == 7


def test_different_seeds_break_ties_differently() -> None:
    app = make_app(replicas=3)
    nodes = fleet(20)
    choices = {
        tuple(sorted(where(place_app(app, nodes=nodes, assignments=[], seed=s)).values()))
        for s in range(6)
    }
    assert len(choices) > 1


# -- keep in place and move -------------------------------------------------------------------


def test_running_replicas_stay_even_when_an_emptier_node_appears() -> None:
    app = make_app(replicas=3)
    nodes = fleet(3)
    before = place_app(app, nodes=nodes, assignments=[], seed=1)
    after = place_app(app, nodes=[*nodes, make_node("gw-new")], assignments=before.assignments)
    assert where(after) == where(before)
    assert after.kept == ("web-0", "web-1", "web-2")
    assert (after.placed, after.stopped, after.moved) == ((), (), ())
    assert not after.changed


def test_a_replica_moves_when_its_node_no_longer_matches_the_selector() -> None:
    app = make_app(replicas=2, selector={"role": "gw"}, max_per_node=1)
    nodes = fleet(3, labels={"role": "gw"})
    before = place_app(app, nodes=nodes, assignments=[])
    victim, other = before.assignments
    relabelled = [make_node(n.node, labels={}) if n.node == victim.node else n for n in nodes]
    after = place_app(app, nodes=relabelled, assignments=before.assignments)
    (spare,) = {n.node for n in nodes} - {victim.node, other.node}
    assert after.moves == {victim.replica: (victim.node, spare)}
    assert after.moved == (victim.replica,)
    assert after.kept == (other.replica,)
    assert (after.placed, after.stopped) == ((), ())


def test_a_replica_moves_when_its_node_is_lost() -> None:
    app = make_app(replicas=2, max_per_node=1)
    nodes = fleet(3)
    before = place_app(app, nodes=nodes, assignments=[])
    lost = before.assignments[0]
    after = place_app(
        app, nodes=nodes, assignments=before.assignments, lost_nodes=frozenset({lost.node})
    )
    assert after.moved == (lost.replica,)
    assert lost.node not in {a.node for a in after.assignments}
    assert after.unplaced == ()


def test_a_replica_stays_on_an_offline_node_within_its_grace() -> None:
    app = make_app(replicas=1, disconnect={"grace_s": 60})
    nodes = fleet(2)
    before = place_app(app, nodes=nodes, assignments=[])
    host = before.assignments[0].node
    offline = [make_node(n.node, ready=False) if n.node == host else n for n in nodes]
    within = place_app(
        app, nodes=offline, assignments=before.assignments, offline_for_s={host: 59.0}
    )
    assert within.kept == ("web-0",)
    beyond = place_app(
        app, nodes=offline, assignments=before.assignments, offline_for_s={host: 60.0}
    )
    assert beyond.moved == ("web-0",)
    assert beyond.moves["web-0"][0] == host


def test_a_lost_node_keeps_its_replicas_when_the_app_does_not_replace() -> None:
    app = make_app(replicas=1, disconnect={"replace": False})
    nodes = fleet(2)
    before = place_app(app, nodes=nodes, assignments=[])
    host = before.assignments[0].node
    offline = [make_node(n.node, ready=False) if n.node == host else n for n in nodes]
    after = place_app(
        app, nodes=offline, assignments=before.assignments, lost_nodes=frozenset({host})
    )
    assert where(after) == {"web-0": host}
    assert after.kept == ("web-0",)


def test_a_replica_on_a_node_that_left_the_fleet_moves() -> None:
    app = make_app(replicas=1)
    nodes = fleet(2)
    before = place_app(app, nodes=nodes, assignments=[])
    host = before.assignments[0].node
    after = place_app(
        app, nodes=[n for n in nodes if n.node != host], assignments=before.assignments
    )
    assert after.moved == ("web-0",)


def test_a_replica_on_a_node_missing_from_the_pass_waits_if_the_caller_reports_it_offline() -> None:
    # After an orchestrator restart a node may hold replicas before it has been heard of.
    app = make_app(replicas=1, disconnect={"grace_s": 30})
    unheard = make_node("gw-9", "far")
    running = [assign(app, "web-0", unheard)]
    nodes = fleet(2)
    within = place_app(app, nodes=nodes, assignments=running, offline_for_s={"gw-9": 10.0})
    assert within.kept == ("web-0",)
    assert within.assignments == (assign(app, "web-0", unheard),)
    beyond = place_app(app, nodes=nodes, assignments=running, offline_for_s={"gw-9": 30.0})
    assert beyond.moves["web-0"][0] == "gw-9"
    daemon = make_app(replicas=None, mode="daemon", disconnect={"grace_s": 30})
    daemon_running = [assign(daemon, "web-gw-9", unheard)]
    waiting = place_app(
        daemon, nodes=nodes, assignments=daemon_running, offline_for_s={"gw-9": 10.0}
    )
    assert waiting.kept == ("web-gw-9",)
    assert waiting.placed == ("web-gw-0", "web-gw-1")


def test_cordon_stops_new_placements_but_keeps_what_runs() -> None:
    app = make_app(replicas=1)
    nodes = [make_node("gw-0"), make_node("gw-1", cordoned=True)]
    before = place_app(app, nodes=nodes, assignments=[])
    assert where(before) == {"web-0": "gw-0"}
    cordoned = [make_node("gw-0", cordoned=True), make_node("gw-1")]
    after = place_app(app, nodes=cordoned, assignments=before.assignments)
    assert after.kept == ("web-0",)


def test_a_missing_latency_probe_does_not_evict_but_a_slow_one_does() -> None:
    app = make_app(replicas=1, max_latency_ms={"target": "hub", "ms": 50})
    nodes = [
        make_node("gw-0", latency_ms={"hub": 10.0}),
        make_node("gw-1", latency_ms={"hub": 20.0}),
    ]
    before = place_app(app, nodes=nodes, assignments=[])
    assert where(before) == {"web-0": "gw-0"}  # the lower latency wins
    restarted = [make_node("gw-0"), nodes[1]]
    assert place_app(app, nodes=restarted, assignments=before.assignments).kept == ("web-0",)
    slow = [make_node("gw-0", latency_ms={"hub": 90.0}), nodes[1]]
    after = place_app(app, nodes=slow, assignments=before.assignments)
    assert after.moves == {"web-0": ("gw-0", "gw-1")}


def test_lowering_max_per_node_moves_the_highest_index_extras() -> None:
    app = make_app(replicas=3)
    nodes = fleet(3)
    crowded = [assign(app, f"web-{i}", nodes[0]) for i in range(3)]
    after = place_app(make_app(replicas=3, max_per_node=1), nodes=nodes, assignments=crowded)
    assert after.kept == ("web-0",)
    assert after.moved == ("web-1", "web-2")
    assert sorted(where(after).values()) == ["gw-0", "gw-1", "gw-2"]


def test_a_replica_whose_resources_grew_past_its_node_moves() -> None:
    small = make_app(replicas=1, memory_mb=256)
    nodes = [make_node("gw-0", memory_mb=512), make_node("gw-1", memory_mb=4096)]
    running = [assign(small, "web-0", nodes[0])]
    same = place_app(small, nodes=nodes, assignments=running)
    assert same.kept == ("web-0",)
    grown = place_app(make_app(replicas=1, memory_mb=1024), nodes=nodes, assignments=running)
    assert grown.moves == {"web-0": ("gw-0", "gw-1")}
    assert grown.assignments[0].memory_mb == 1024


def test_a_replica_that_must_leave_and_fits_nowhere_is_stopped_and_unplaced() -> None:
    app = make_app(replicas=1, selector={"role": "gw"})
    node = make_node("gw-0", labels={"role": "gw"})
    before = place_app(app, nodes=[node], assignments=[])
    after = place_app(app, nodes=[make_node("gw-0")], assignments=before.assignments)
    assert after.stopped == ("web-0",)
    assert after.assignments == ()
    assert after.unplaced == (Unplaced(count=1, reasons=["1 node: label role=gw required"]),)


# -- scaling ----------------------------------------------------------------------------------


def test_scale_up_adds_the_lowest_free_indexes_and_keeps_the_rest() -> None:
    nodes = fleet(5)
    before = place_app(make_app(replicas=2), nodes=nodes, assignments=[])
    after = place_app(make_app(replicas=5), nodes=nodes, assignments=before.assignments)
    assert after.kept == ("web-0", "web-1")
    assert after.placed == ("web-2", "web-3", "web-4")


def test_scale_up_refills_a_gap_before_higher_indexes() -> None:
    app = make_app(replicas=3)
    nodes = fleet(3)
    with_gap = [assign(app, "web-0", nodes[0]), assign(app, "web-2", nodes[1])]
    after = place_app(app, nodes=nodes, assignments=with_gap)
    assert after.placed == ("web-1",)
    assert after.kept == ("web-0", "web-2")


def test_scale_down_stops_the_highest_indexes_first() -> None:
    nodes = fleet(5)
    before = place_app(make_app(replicas=5), nodes=nodes, assignments=[])
    after = place_app(make_app(replicas=2), nodes=nodes, assignments=before.assignments)
    assert after.kept == ("web-0", "web-1")
    assert after.stopped == ("web-2", "web-3", "web-4")
    assert where(after) == {r: n for r, n in where(before).items() if r in after.kept}


def test_scale_to_zero_stops_everything_and_leaves_nothing_unplaced() -> None:
    nodes = fleet(2)
    before = place_app(make_app(replicas=2), nodes=nodes, assignments=[])
    after = place_app(make_app(replicas=0), nodes=nodes, assignments=before.assignments)
    assert after.assignments == ()
    assert after.stopped == ("web-0", "web-1")
    assert after.unplaced == ()


def test_daemon_named_replicas_are_stopped_when_an_app_becomes_replicated() -> None:
    nodes = fleet(2)
    daemon = make_app(replicas=None, mode="daemon")
    before = place_app(daemon, nodes=nodes, assignments=[])
    after = place_app(make_app(replicas=1), nodes=nodes, assignments=before.assignments)
    assert after.stopped == ("web-gw-0", "web-gw-1")
    assert after.placed == ("web-0",)


def test_other_apps_assignments_are_left_alone() -> None:
    nodes = fleet(2)
    other = make_app("db", replicas=1)
    others = place_app(other, nodes=nodes, assignments=[]).assignments
    result = place_app(make_app(replicas=1), nodes=nodes, assignments=others)
    assert {a.app for a in result.assignments} == {"web"}


# -- daemon mode ------------------------------------------------------------------------------


def test_a_daemon_runs_once_on_every_matching_node() -> None:
    app = make_app(replicas=None, mode="daemon", selector={"role": "gw"})
    nodes = [*fleet(3, labels={"role": "gw"}), make_node("other")]
    result = place_app(app, nodes=nodes, assignments=[])
    assert where(result) == {"web-gw-0": "gw-0", "web-gw-1": "gw-1", "web-gw-2": "gw-2"}
    assert result.desired == 3
    assert result.unplaced == ()


def test_a_daemon_follows_nodes_as_they_join_leave_and_change_labels() -> None:
    app = make_app(replicas=None, mode="daemon", selector={"role": "gw"})
    nodes = fleet(3, labels={"role": "gw"})
    first = place_app(app, nodes=nodes, assignments=[])
    changed = [
        nodes[0],  # stays
        make_node("gw-1", labels={"role": "db"}),  # label change
        # gw-2 left the fleet
        make_node("gw-3", labels={"role": "gw"}),  # joined
    ]
    second = place_app(app, nodes=changed, assignments=first.assignments)
    assert second.kept == ("web-gw-0",)
    assert second.stopped == ("web-gw-1", "web-gw-2")
    assert second.placed == ("web-gw-3",)
    assert where(second) == {"web-gw-0": "gw-0", "web-gw-3": "gw-3"}


def test_a_daemon_reports_matching_nodes_short_of_resources_as_unplaced() -> None:
    app = make_app(replicas=None, mode="daemon", memory_mb=512)
    nodes = [
        make_node("big"),
        make_node("tiny-1", memory_mb=256),
        make_node("tiny-2", memory_mb=256),
    ]
    result = place_app(app, nodes=nodes, assignments=[])
    assert where(result) == {"web-big": "big"}
    assert result.desired == 3
    assert result.unplaced == (
        Unplaced(count=2, reasons=["2 nodes: not enough memory (512 MB needed)"]),
    )
    assert str(result.rejections["tiny-1"]) == "not enough memory (512 MB needed) (256/256 MB free)"


def test_a_daemon_keeps_its_replica_on_an_offline_node_even_beyond_grace() -> None:
    app = make_app(replicas=None, mode="daemon")
    first = place_app(app, nodes=[make_node("gw-0")], assignments=[])
    later = [make_node("gw-0", ready=False), make_node("gw-1", ready=False)]
    second = place_app(app, nodes=later, assignments=first.assignments)
    assert second.kept == ("web-gw-0",)
    assert second.placed == ()
    lost = place_app(
        app, nodes=later, assignments=first.assignments, lost_nodes=frozenset({"gw-0"})
    )
    # Beyond grace too: it cannot run anywhere else, and a returning node must find its
    # daemon still in its document (else it stops it and starts it again a moment later).
    assert lost.kept == ("web-gw-0",)
    assert lost.stopped == ()
    gone = place_app(app, nodes=[make_node("gw-1")], assignments=first.assignments)
    assert gone.stopped == ("web-gw-0",)  # a node that left the fleet still loses it


def test_a_daemon_replica_on_a_long_node_name_gets_the_hashed_name() -> None:
    long_name = "gateway-" + "x" * 55
    app = make_app(replicas=None, mode="daemon")
    result = place_app(app, nodes=[make_node(long_name)], assignments=[])
    assert result.placed == (replica_name("web", node=long_name),)
    again = place_app(app, nodes=[make_node(long_name)], assignments=result.assignments)
    assert again.kept == result.placed


# -- spread and bin-pack ----------------------------------------------------------------------


def test_spread_site_puts_one_replica_in_each_site_before_doubling_up() -> None:
    # Site s0 has many big, empty nodes, which least-allocated alone would prefer.
    nodes = [
        *[make_node(f"big-{i}", "s0", cpu_cores=64.0, memory_mb=65536) for i in range(6)],
        make_node("small-1", "s1"),
        make_node("small-2", "s2"),
    ]
    three = place_app(make_app(replicas=3, spread="site"), nodes=nodes, assignments=[])
    assert sorted(a.site for a in three.assignments) == ["s0", "s1", "s2"]
    six = place_app(make_app(replicas=6, spread="site"), nodes=nodes, assignments=[])
    assert Counter(a.site for a in six.assignments) == {"s0": 2, "s1": 2, "s2": 2}


def test_spread_site_counts_replicas_that_already_run() -> None:
    nodes = [make_node("a-1", "sa"), make_node("a-2", "sa"), make_node("b-1", "sb")]
    app = make_app(replicas=2, spread="site")
    running = [assign(app, "web-0", nodes[0])]
    result = place_app(app, nodes=nodes, assignments=running)
    assert where(result) == {"web-0": "a-1", "web-1": "b-1"}


def test_spread_node_uses_every_node_before_a_second_replica_anywhere() -> None:
    nodes = fleet(4)
    result = place_app(make_app(replicas=8), nodes=nodes, assignments=[])
    assert Counter(where(result).values()) == {f"gw-{i}": 2 for i in range(4)}


def test_binpack_fills_the_fewest_nodes() -> None:
    nodes = fleet(10)  # 4 cores each
    packed = place_app(
        make_app(replicas=8, cpu=1.0, strategy="binpack"), nodes=nodes, assignments=[]
    )
    assert len(set(where(packed).values())) == 2
    spread = place_app(make_app(replicas=8, cpu=1.0), nodes=nodes, assignments=[])
    assert len(set(where(spread).values())) == 8


def test_binpack_prefers_a_node_other_apps_already_fill() -> None:
    nodes = fleet(5)
    other = make_app("db", replicas=1, cpu=2.0)
    busy = place_app(other, nodes=nodes, assignments=[]).assignments
    result = place_app(
        make_app(replicas=1, cpu=1.0, strategy="binpack"), nodes=nodes, assignments=busy
    )
    assert where(result)["web-0"] == busy[0].node


def test_latency_prefers_the_closer_node_when_load_is_equal() -> None:
    app = make_app(replicas=1, max_latency_ms={"target": "hub", "ms": 50})
    nodes = [make_node(f"gw-{ms}", latency_ms={"hub": float(ms)}) for ms in (40, 5, 25)]
    assert where(place_app(app, nodes=nodes, assignments=[])) == {"web-0": "gw-5"}


# -- capacity ---------------------------------------------------------------------------------


def test_one_pass_never_overcommits_a_node() -> None:
    nodes = fleet(3, cpu_cores=2.0, memory_mb=1024)
    app = make_app(replicas=20, cpu=0.5, memory_mb=256)
    result = place_app(app, nodes=nodes, assignments=[])
    assert len(result.assignments) == 12  # 4 per node by cpu and memory alike
    check_capacity(nodes, result.assignments)
    assert result.unplaced == (
        Unplaced(count=8, reasons=["3 nodes: not enough memory (256 MB needed)"]),
    )


def test_place_all_never_overcommits_across_many_random_apps() -> None:
    rng = random.Random(42)
    nodes = [
        make_node(
            f"gw-{i}",
            f"s{i % 4}",
            cpu_cores=rng.choice([1.0, 2.0, 4.0]),
            memory_mb=rng.choice([512, 1024, 2048]),
        )
        for i in range(30)
    ]
    apps = [
        make_app(
            f"app-{k}",
            replicas=rng.randint(0, 15),
            cpu=rng.choice([0.1, 0.25, 0.5, 1.0]),
            memory_mb=rng.choice([64, 128, 256, 512]),
            strategy=rng.choice(["spread", "binpack"]),
        )
        for k in range(12)
    ]
    assignments: list[Assignment] = []
    for round_ in range(3):
        results = place_all(apps, nodes, assignments, seed=round_)
        assignments = [a for r in results.values() for a in r.assignments]
        check_capacity(nodes, assignments)
        for app in apps:
            got = results[app.name]
            assert len(got.assignments) + got.unplaced_count == app.replicas


def test_place_all_gives_resources_to_apps_in_name_order() -> None:
    nodes = [make_node("gw-0", memory_mb=1024)]
    apps = [
        make_app("zeta", replicas=1, memory_mb=768),
        make_app("alpha", replicas=1, memory_mb=768),
    ]
    results = place_all(apps, nodes, [])
    assert where(results["alpha"]) == {"alpha-0": "gw-0"}
    assert results["zeta"].assignments == ()
    assert results["zeta"].unplaced_text == "1 node: not enough memory (768 MB needed)"


def test_place_all_frees_what_an_app_scaled_down_for_the_apps_after_it() -> None:
    nodes = [make_node("gw-0", memory_mb=1024)]
    big = make_app("alpha", replicas=1, memory_mb=768)
    running = place_all([big], nodes, [])["alpha"].assignments
    results = place_all(
        [make_app("alpha", replicas=0), make_app("beta", replicas=1, memory_mb=768)],
        nodes,
        running,
    )
    assert where(results["beta"]) == {"beta-0": "gw-0"}


def test_place_all_filters_each_app_by_its_own_constraints() -> None:
    # Apps with equal constraints share static filter results within a pass; apps with
    # different ones must not.
    nodes = [
        make_node("eu-1", region="eu", labels={"role": "gw"}),
        make_node("us-1", region="us", labels={"role": "gw"}),
        make_node("eu-2", region="eu", runtimes=frozenset({"docker"})),
    ]
    docker = validate(
        AppManifest,
        {
            "name": "e-docker",
            "replicas": 1,
            "workload": {"runtime": "docker", "image": "busybox:1.36"},
            "placement": {"regions": ["eu"]},
        },
    )
    apps = [
        make_app("a-eu", replicas=2, regions=["eu"], max_per_node=1),
        make_app("b-us", replicas=1, regions=["us"], max_per_node=1),
        make_app("c-gw", replicas=3, selector={"role": "gw"}, max_per_node=1),
        make_app("d-eu", replicas=1, regions=["eu"], max_per_node=1),
        docker,
    ]
    results = place_all(apps, nodes, [])
    assert where(results["a-eu"]) == {"a-eu-0": "eu-1"}
    assert results["a-eu"].unplaced_text == (
        "1 node: max 1 replica per node; 1 node: region us not in [eu]; "
        "1 node: runtime process not available"
    )
    assert where(results["b-us"]) == {"b-us-0": "us-1"}
    assert sorted(where(results["c-gw"]).values()) == ["eu-1", "us-1"]
    assert results["c-gw"].unplaced_text == (
        "2 nodes: max 1 replica per node; 1 node: runtime process not available"
    )
    assert where(results["d-eu"]) == {"d-eu-0": "eu-1"}
    assert where(results["e-docker"]) == {"e-docker-0": "eu-2"}


def test_place_all_refuses_the_same_app_twice() -> None:
    with pytest.raises(ValueError, match="web"):
        place_all([make_app(), make_app()], fleet(1), [])


def test_placement_refuses_two_views_of_one_node() -> None:
    with pytest.raises(ValueError, match="same node"):
        place_app(make_app(), nodes=[make_node("gw-0"), make_node("gw-0")], assignments=[])


# -- unplaced reasons -------------------------------------------------------------------------


def test_unplaced_reasons_group_nodes_by_reason_most_common_first() -> None:
    app = make_app(replicas=2, regions=["eu"])
    nodes = [
        make_node("gw-1", region="us"),
        make_node("gw-2", region="us"),
        make_node("gw-3", ready=False),
    ]
    result = place_app(app, nodes=nodes, assignments=[])
    assert result.unplaced == (
        Unplaced(count=2, reasons=["2 nodes: region us not in [eu]", "1 node: offline"]),
    )
    assert result.unplaced_text == "2 nodes: region us not in [eu]; 1 node: offline"


def test_unplaced_reasons_mix_static_and_capacity_reasons() -> None:
    app = make_app(replicas=3, memory_mb=1024, max_per_node=1, sites=["s1"])
    nodes = [
        make_node("a", "s1"),
        make_node("b", "s1", memory_mb=512),
        make_node("c", "s2"),
        make_node("d", "s1", cordoned=True),
    ]
    result = place_app(app, nodes=nodes, assignments=[])
    assert where(result) == {"web-0": "a"}
    assert result.unplaced_text == (
        "1 node: cordoned; 1 node: max 1 replica per node; "
        "1 node: not enough memory (1024 MB needed); 1 node: site s2 not in [s1]"
    )
    assert {n: r.filter for n, r in result.rejections.items()} == {
        "a": "max-per-node",
        "b": "resources",
        "c": "site",
        "d": "cordon",
    }


def test_an_empty_fleet_says_so() -> None:
    result = place_app(make_app(replicas=1), nodes=[], assignments=[])
    assert result.unplaced == (Unplaced(count=1, reasons=["no nodes in the fleet"]),)


def test_a_placement_prints_its_buckets_for_logs() -> None:
    app = make_app(replicas=2, regions=["eu"])
    result = place_app(
        app, nodes=[make_node("gw-1"), make_node("gw-2", region="us")], assignments=[]
    )
    assert str(result) == ("web: kept [-] placed [web-0, web-1] stopped [-] moved [-]")
    blocked = place_app(
        make_app(replicas=1, regions=["ch"]), nodes=[make_node("gw-1")], assignments=[]
    )
    assert str(blocked).endswith("unplaced 1 (1 node: region eu not in [ch])")


def test_node_views_come_from_capabilities() -> None:
    caps = validate(
        Capabilities,
        {
            "node": "gw-1",
            "site": "s1",
            "arch": "aarch64",
            "cpu_cores": 4,
            "memory_mb": 2048,
            "disk_mb": 1000,
            "runtimes": ["process"],
            "labels": {"role": "gw"},
            "region": "eu",
            "network": {"bandwidth_mbps": 50},
        },
    )
    view = node_view_from(caps, ready=True, latency_ms={"hub": 3.0})
    app = make_app(replicas=1, selector={"role": "gw"}, min_bandwidth_mbps=10)
    assert where(place_app(app, nodes=[view], assignments=[])) == {"web-0": "gw-1"}


# -- scale ------------------------------------------------------------------------------------


def test_a_thousand_replicas_on_a_thousand_nodes_spread_evenly_over_the_sites() -> None:
    # How fast this is, is bench/placement.py's figure, not a unit test's bound.
    nodes = fleet(1000, sites=10)
    app = make_app(replicas=1000, cpu=0.1, memory_mb=64, spread="site")
    result = place_app(app, nodes=nodes, assignments=[])
    assert len(result.assignments) == 1000
    assert Counter(a.site for a in result.assignments) == {f"s{i}": 100 for i in range(10)}
