"""Rebalancing, pure: a joining node gets replicas of uneven spread apps, within the churn
budget, make-before-break, never for apps that opt out or pack — and never without being
asked (placement alone never moves a running replica)."""

from __future__ import annotations

import json
from typing import Any

from edgefleet_orchestrator.reconcile.fleet_pass import Knobs
from edgefleet_orchestrator.scaling.rebalance import RebalanceGate
from edgefleet_protocol.manifest import AppManifest, load_manifest
from harness.scaling_sim import Sim


def app(name: str, replicas: int, **extra: Any) -> AppManifest:
    body: dict[str, Any] = {
        "name": name,
        "replicas": replicas,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.25, "memory_mb": 64}},
    }
    body.update(extra)
    return load_manifest(json.dumps(body))


ON = Knobs(rebalance=True, rebalance_budget=2)


def counts(sim: Sim, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in sim.where(name).values():
        out[node] = out.get(node, 0) + 1
    return dict(sorted(out.items()))


def fleet(*apps: AppManifest, nodes: int = 2) -> Sim:
    sim = Sim(apps={a.name: a for a in apps})
    for i in range(1, nodes + 1):
        sim.join(f"n{i}")
    sim.settle()
    return sim


def run_until_settled(sim: Sim, knobs: Knobs = ON, passes: int = 10) -> None:
    for _ in range(passes):
        sim.step(knobs)
        sim.report(settle=True)
        assert sim.last is not None
        if sim.last.rebalance.settled and not sim.control.retiring:
            return
    raise AssertionError(f"not settled after {passes} passes: {counts}")


def test_a_joining_node_gets_replicas_until_the_app_is_even() -> None:
    sim = fleet(app("web", 4))
    assert counts(sim, "web") == {"n1": 2, "n2": 2}
    sim.join("n3")
    run_until_settled(sim)
    assert sorted(counts(sim, "web").values()) == [1, 1, 2]
    assert "n3" in counts(sim, "web")


def test_without_being_asked_nothing_moves() -> None:
    sim = fleet(app("web", 4))
    sim.join("n3")
    sim.step(Knobs())
    assert counts(sim, "web") == {"n1": 2, "n2": 2}


def test_a_rebalance_move_is_make_before_break() -> None:
    sim = fleet(app("web", 4))
    sim.join("n3")
    result = sim.step(ON)
    (copy,) = sim.control.retiring
    assert (copy.cause, copy.to_node) == ("rebalance", "n3")
    assert copy.replica in {w.name for w in sim.docs[copy.node].workloads}, "old copy runs on"
    assert sim.running("web") == 4
    assert any(n.kind == "rebalance" and "rebalancing web" in n.message for n in result.notes)


def test_the_churn_budget_bounds_the_moves_of_a_pass() -> None:
    sim = fleet(app("a", 4), app("b", 4), app("c", 4))
    sim.join("n3")
    result = sim.step(Knobs(rebalance=True, rebalance_budget=1))
    assert sum(len(r) for r in result.rebalance.leaving.values()) == 1
    assert len(sim.control.retiring) == 1
    assert not result.rebalance.settled, "more to do once the budget allows"
    none = sim.step(Knobs(rebalance=True, rebalance_budget=0))
    assert none.rebalance.leaving == {}


def test_apps_that_opt_out_or_pack_are_left_where_they_run() -> None:
    sim = fleet(
        app("pinned", 4, disruption={"rebalance": False}),
        app("packed", 4, placement={"strategy": "binpack"}),
    )
    before = {name: counts(sim, name) for name in ("pinned", "packed")}
    sim.join("n3")
    run_until_settled(sim)
    assert {name: counts(sim, name) for name in ("pinned", "packed")} == before


def test_a_full_joining_node_is_not_a_reason_to_keep_trying() -> None:
    sim = fleet(app("web", 4))
    sim.join("n3", cores=0.1)  # too small for even one replica
    result = sim.step(ON)
    assert result.rebalance.settled and result.rebalance.leaving == {}


def test_site_spread_evens_out_sites_not_nodes() -> None:
    sim = Sim(apps={"web": app("web", 4, placement={"spread": "site"})})
    sim.join("a1", site="sa")
    sim.join("a2", site="sa")
    sim.settle()
    sim.join("b1", site="sb")
    run_until_settled(sim)
    by_site: dict[str, int] = {}
    for node in sim.where("web").values():
        site = sim.registry.nodes[node].site
        by_site[site] = by_site.get(site, 0) + 1
    assert by_site == {"sa": 2, "sb": 2}


def test_one_move_at_a_time_per_app() -> None:
    sim = fleet(app("web", 6))
    sim.join("n3")
    sim.step(ON)  # the first move starts: 3/3/0 becomes 2/3/1, still uneven
    sim.report(settle=False)  # its replacement is still starting
    result = sim.step(ON)
    assert result.rebalance.leaving == {}, "not while the first move is under way"
    assert not result.rebalance.settled
    sim.report(settle=True)
    run_until_settled(sim)
    assert counts(sim, "web") == {"n1": 2, "n2": 2, "n3": 2}


# -- the shell's gate: when to rebalance, and the churn budget ---------------------------------


def test_the_gate_opens_when_a_node_joins_and_counts_moves_in_a_window() -> None:
    gate = RebalanceGate(max_moves=2, interval_s=60)
    assert gate.budget(frozenset({"n1", "n2"}), now=0) == (False, 2), "the first look is a baseline"
    assert gate.budget(frozenset({"n1", "n2", "n3"}), now=1) == (True, 2), "n3 joined"
    gate.after(asked=True, budget=2, started=2, settled=False, in_flight=True, now=1)
    assert gate.budget(frozenset({"n1", "n2", "n3"}), now=30) == (True, 0), "budget spent"
    gate.after(asked=True, budget=0, started=0, settled=False, in_flight=True, now=30)
    assert not gate.due(60.9)
    assert gate.due(61.0), "the oldest moves left the window: try again"
    assert gate.budget(frozenset({"n1", "n2", "n3"}), now=61.5) == (True, 2)
    gate.after(asked=True, budget=2, started=0, settled=True, in_flight=False, now=61.5)
    assert gate.budget(frozenset({"n1", "n2", "n3"}), now=62) == (False, 2), "settled: closed"


def test_a_gate_without_budget_never_asks() -> None:
    gate = RebalanceGate(max_moves=0, interval_s=60)
    gate.budget(frozenset({"n1"}), now=0)
    assert gate.budget(frozenset({"n1", "n2"}), now=1) == (False, 0)


# -- load, not only counts -------------------------------------------------------------


def _busy_first_node(*apps: AppManifest) -> Sim:
    """n1 carries a 1.5-core app that never moves; then n2 joins and ``apps`` deploy."""
    hog = app("hog", 1, disruption={"rebalance": False})
    hog = hog.model_copy(
        update={
            "workload": hog.workload.model_copy(
                update={"resources": hog.workload.resources.model_copy(update={"cpu": 1.5})}
            )
        }
    )
    sim = Sim(apps={"hog": hog})
    sim.join("n1")
    sim.settle()
    sim.join("n2")
    for extra in apps:
        sim.apps[extra.name] = extra
    sim.settle()
    return sim


def test_an_even_app_moves_its_replica_off_the_busiest_node_to_an_empty_one() -> None:
    sim = _busy_first_node(app("web", 2))
    assert counts(sim, "web") == {"n1": 1, "n2": 1}, "even by count: the old rule moved nothing"
    sim.join("n3")
    run_until_settled(sim)
    assert counts(sim, "web") == {"n2": 1, "n3": 1}
    assert counts(sim, "hog") == {"n1": 1}, "an app that opted out stays"


def test_a_load_move_names_both_nodes_and_their_allocation() -> None:
    sim = _busy_first_node(app("web", 2))
    sim.join("n3")
    result = sim.step(ON)
    (copy,) = sim.control.retiring
    assert (copy.node, copy.to_node) == ("n1", "n3")
    said = "n1 is 50% allocated, n3 would be 9% with the replica"
    assert any(n.kind == "rebalance" and said in n.message for n in result.notes), [
        n.message for n in result.notes
    ]


def test_nodes_within_the_load_gap_keep_their_replicas() -> None:
    sim = fleet(app("web", 2), nodes=2)
    sim.join("n3")
    run_until_settled(sim)
    assert counts(sim, "web") == {"n1": 1, "n2": 1}, "25 % more allocated is the least that moves"


def test_bin_packed_apps_are_never_moved_for_load() -> None:
    sim = _busy_first_node(app("batch", 2, placement={"strategy": "binpack"}))
    before = counts(sim, "batch")
    sim.join("n3")
    for _ in range(4):
        sim.step(ON)
        sim.report(settle=True)
    assert counts(sim, "batch") == before
