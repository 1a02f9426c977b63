"""Drain, pure: which replicas move and when (the max_unavailable budget), make-before-break
through whole reconcile passes against simulated agents, stuck replicas that stay running
with their reasons, and the progress a drain reports."""

from __future__ import annotations

import json
from typing import Any

from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.fleet.replicas import SpecCache
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.scaling.drain import milestones, plan_drains
from edgefleet_orchestrator.scaling.moves import Retiring, finish_retiring
from edgefleet_protocol import Reported, TopicKind, WorkloadReport
from edgefleet_protocol.manifest import AppManifest, load_manifest
from harness.scaling_sim import Sim


def app(name: str, replicas: int, **extra: Any) -> AppManifest:
    body: dict[str, Any] = {
        "name": name,
        "replicas": replicas,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.5, "memory_mb": 128}},
    }
    body.update(extra)
    return load_manifest(json.dumps(body))


def test_a_drain_moves_every_replica_and_never_dips_below_the_budget() -> None:
    sim = Sim(apps={"web": app("web", 4, disruption={"max_unavailable": 1})})
    for n in ("n1", "n2", "n3"):
        sim.join(n)
    sim.settle()
    victim = max(("n1", "n2", "n3"), key=lambda n: list(sim.where("web").values()).count(n))
    on_victim = {r for r, n in sim.where("web").items() if n == victim}
    assert on_victim
    sim.join("n4")
    sim.drain(victim)
    samples = []
    for _ in range(20):
        sim.step()
        samples.append(sim.running("web"))
        sim.report(settle=False)  # replacements are starting: the old copies still serve
        samples.append(sim.running("web"))
        sim.report(settle=True)
        samples.append(sim.running("web"))
        assert sim.last is not None
        if sim.last.drains[victim]["state"] == "drained" and not sim.control.retiring:
            break
    assert min(samples) >= 4 - 1, samples
    assert victim not in sim.where("web").values()
    assert sim.last is not None and sim.last.drains[victim]["state"] == "drained"
    assert all(w.app != "web" for w in sim.docs[victim].workloads), "old copies were stopped"
    assert sim.running("web") == 4


def test_make_before_break_keeps_the_old_copy_in_its_document_until_the_new_one_runs() -> None:
    sim = Sim(apps={"web": app("web", 1)})
    sim.join("n1")
    sim.settle()
    sim.join("n2")
    sim.drain("n1")
    result = sim.step()
    assert sim.where("web") == {"web-0": "n2"}
    assert {w.name for w in sim.docs["n1"].workloads} == {"web-0"}, "old copy kept"
    assert {w.name for w in sim.docs["n2"].workloads} == {"web-0"}, "replacement started"
    assert [r.node for r in sim.control.retiring] == ["n1"]
    assert any(n.kind == "drain" and "make-before-break" in n.message for n in result.notes)
    assert result.drains["n1"]["moving"] == [
        {"app": "web", "replica": "web-0", "to": "n2", "state": "pending"}
    ]
    sim.report(settle=False)
    sim.step()
    assert {w.name for w in sim.docs["n1"].workloads} == {"web-0"}, "new one only starting"
    sim.report(settle=True)
    result = sim.step()
    assert sim.docs["n1"].workloads == [], "the replacement runs: the old copy stops"
    assert sim.control.retiring == ()
    assert any(n.kind == "move" and n.details["completed"] for n in result.notes)


def test_max_unavailable_two_moves_two_at_a_time() -> None:
    sim = Sim(apps={"web": app("web", 4, placement={"max_per_node": 4})})
    sim.join("n1", cores=4)
    sim.settle()
    sim.join("n2", cores=4)
    sim.drain("n1", max_unavailable=2)
    sim.step()
    assert len(sim.control.retiring) == 2
    assert sorted(r.replica for r in sim.control.retiring) == ["web-0", "web-1"]
    assert {w.reason for w in _waiting(sim)} == {
        "max_unavailable 2 reached for app web (disrupted: web-0, web-1)"
    }


def _waiting(sim: Sim) -> list[Any]:
    plan = plan_drains(
        sim.control.drains,
        sim.apps,
        list(sim.assignments),
        list(sim.control.retiring),
        sim.registry.nodes,
    )
    return plan.waiting


def test_a_replica_with_nowhere_to_go_stays_running_and_is_reported_stuck() -> None:
    big = {"runtime": "simulated", "resources": {"cpu": 1.5, "memory_mb": 128}}
    sim = Sim(apps={"big": app("big", 1, workload=big)})
    sim.join("n1")
    sim.settle()
    sim.join("n2", cores=1)  # too small for it
    sim.drain("n1")
    result = sim.step()
    sim.report(settle=True)
    assert sim.where("big") == {"big-0": "n1"}, "stays where it runs"
    assert {w.name for w in sim.docs["n1"].workloads} == {"big-0"}
    progress = result.drains["n1"]
    assert progress["state"] == "stuck"
    assert progress["stuck"] == [
        {
            "app": "big",
            "replica": "big-0",
            "reasons": ["1 node: cordoned", "1 node: not enough cpu (1.5 cores needed)"],
        }
    ]
    assert sim.running("big") == 1
    sim.join("n3", cores=2)  # room appears: the drain carries on by itself
    sim.step()
    sim.report(settle=True)
    sim.step()
    assert sim.where("big") == {"big-0": "n3"}
    assert sim.last is not None and sim.last.drains["n1"]["state"] == "drained"


def test_an_app_already_short_of_its_budget_waits_and_says_why() -> None:
    sim = Sim(apps={"web": app("web", 2, placement={"max_per_node": 1})})
    sim.join("n1")
    sim.join("n2")
    sim.settle()
    # web's replica on the other node is failing: one replica is already unavailable.
    other = next(n for r, n in sim.where("web").items() if n != "n1")
    failing = {r for r, n in sim.where("web").items() if n == other}
    doc = sim.docs[other]
    sim.registry.ingest(
        TopicKind.NODE_REPORTED, "s1", other,
        Reported(node=other, observed_generation=doc.generation, session=1, ts=sim.now,
                 workloads={w.name: WorkloadReport(app=w.app, spec_hash=w.spec_hash,
                                                   state="failed", since=sim.now)
                            for w in doc.workloads}),
        sim.now,
    )  # fmt: skip
    sim.join("n3")
    sim.drain("n1")
    result = sim.step()
    assert sim.control.retiring == (), "moving n1's replica would leave none running"
    progress = result.drains["n1"]
    assert progress["state"] == "stuck"
    (waiting,) = progress["waiting"]
    assert waiting["reason"] == (
        f"max_unavailable 1 reached for app web (disrupted: {', '.join(sorted(failing))})"
    )


def test_a_replica_that_is_not_running_leaves_at_once_outside_the_budget() -> None:
    sim = Sim(apps={"web": app("web", 1)})
    sim.join("n1")
    sim.step()  # placed, never reported running
    sim.join("n2")
    sim.drain("n1")
    sim.step()
    assert sim.where("web") == {"web-0": "n2"}
    assert sim.control.retiring == (), "nothing ran on n1 to keep serving"
    assert sim.docs["n1"].workloads == []


def test_daemon_replicas_stay_on_a_drained_node() -> None:
    sim = Sim(apps={"logs": _daemon("logs")})
    sim.join("n1")
    sim.settle()
    sim.drain("n1")
    result = sim.step()
    assert result.drains["n1"]["state"] == "drained"
    assert result.drains["n1"]["daemons"] == ["logs-n1"]
    assert {w.name for w in sim.docs["n1"].workloads} == {"logs-n1"}


def _daemon(name: str) -> AppManifest:
    body = {"name": name, "mode": "daemon", "workload": {"runtime": "simulated"}}
    return load_manifest(json.dumps(body))


def test_a_moved_replica_that_moves_back_onto_its_old_copy_drops_the_copy() -> None:
    copy = Assignment("web-0", "web", "n1", "s1", 0.5, 128)
    retiring = (Retiring(copy, "n2", "rebalance", 1.0),)
    apps = {"web": app("web", 1)}
    kept, done = finish_retiring(retiring, [copy], Registry().nodes, SpecCache(apps))
    assert kept == ()
    assert [f.reason for f in done] == ["web-0 is assigned to n1 again"]
    gone, done = finish_retiring(retiring, [], Registry().nodes, SpecCache(apps))
    assert gone == () and [f.reason for f in done] == ["web-0 no longer exists"]


def test_a_drain_waiting_on_a_replacement_that_is_starting_is_draining_not_stuck() -> None:
    sim = Sim(apps={"web": app("web", 2, placement={"max_per_node": 2})})
    sim.join("n1", cores=2)
    sim.settle()
    assert set(sim.where("web").values()) == {"n1"}
    doc = sim.docs["n1"]
    states = {"web-0": "failed", "web-1": "running"}
    sim.registry.ingest(
        TopicKind.NODE_REPORTED, "s1", "n1",
        Reported(node="n1", observed_generation=doc.generation, session=1, ts=sim.now,
                 workloads={w.name: WorkloadReport(app=w.app, spec_hash=w.spec_hash,
                                                   state=states[w.name], since=sim.now)  # type: ignore[arg-type]
                            for w in doc.workloads}),
        sim.now,
    )  # fmt: skip
    sim.join("n2", cores=2)
    sim.drain("n1")
    result = sim.step()
    assert sim.where("web") == {"web-0": "n2", "web-1": "n1"}, "the failed one moves at once"
    progress = result.drains["n1"]
    assert (progress["state"], progress["moving"]) == ("draining", [])
    assert [w["replica"] for w in progress["waiting"]] == ["web-1"]
    sim.report(settle=True)
    sim.step()
    assert [r.replica for r in sim.control.retiring] == ["web-1"], "now web-1's turn"


def test_drain_milestones_are_told_once_each() -> None:
    draining = {"n1": {"state": "draining", "remaining": 2, "stuck": [], "waiting": []}}
    stuck = {
        "n1": {
            "state": "stuck", "remaining": 1, "waiting": [],
            "stuck": [{"replica": "big-0", "app": "big", "reasons": ["1 node: cordoned"]}],
        }
    }  # fmt: skip
    drained = {"n1": {"state": "drained", "remaining": 0, "stuck": [], "waiting": []}}
    assert milestones({}, draining) == [
        ("n1", "draining", "draining node n1: 2 replica(s) left on it")
    ]
    assert milestones(draining, draining) == []
    assert milestones(draining, stuck) == [
        ("n1", "stuck", "drain of node n1 cannot go on: big-0 stuck: 1 node: cordoned")
    ]
    assert milestones(stuck, drained)[0][2] == (
        "node n1 is drained: no replica of a replicated app is left on it"
    )
