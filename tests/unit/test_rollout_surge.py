"""Make-before-break rollouts of replicated apps, pure: whole reconcile passes over an
in-memory fleet (``harness.scaling_sim``) with the rollout machine stepped before each pass,
as the service shell does. Rows and tests are named as sentences.

A replica's *old copy* is the one its node ran before the rollout released it; its *new
copy* is the one a surge starts on another node. Specs are told apart by the command."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from edgefleet_orchestrator.placement import NodeView, place_app
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.placement.pipeline import place_all
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.reconcile.surges import requests
from edgefleet_orchestrator.rollout.machine import step
from edgefleet_orchestrator.rollout.state import (
    RolloutState,
    from_json,
    start_rollout,
    to_json,
)
from edgefleet_orchestrator.rollout.view import rollout_view
from edgefleet_orchestrator.scaling.moves import Retiring
from edgefleet_orchestrator.service.rollout_handlers import restore_manifest
from edgefleet_orchestrator.store.base import StoreSnapshot
from edgefleet_orchestrator.store.control import control_from_snapshot, retiring_records
from edgefleet_protocol import TopicKind, WorkloadReport
from edgefleet_protocol.manifest import AppManifest, load_manifest
from harness.scaling_sim import Sim

V1 = ["/bin/app", "v1"]
V2 = ["/bin/app", "v2"]


def app(
    command: list[str], replicas: int = 3, *, daemon: bool = False, **update: Any
) -> AppManifest:
    body: dict[str, Any] = {
        "name": "web",
        "workload": {
            "runtime": "simulated",
            "command": command,
            "resources": {"cpu": 0.5, "memory_mb": 128},
        },
        "placement": {"max_per_node": 1},
        "update": {"min_healthy_s": 1, "healthy_deadline_s": 10, **update},
    }
    if daemon:
        body["mode"] = "daemon"
    else:
        body["replicas"] = replicas
    return load_manifest(json.dumps(body))


def fleet(nodes: int, replicas: int = 3, **kw: Any) -> Sim:
    sim = Sim(apps={"web": app(V1, replicas, **kw)})
    for i in range(nodes):
        sim.join(f"n{i}")
    sim.settle()
    sim.settle()
    return sim


def deploy_v2(sim: Sim, **kw: Any) -> None:
    """What the deploy handler does: the manifest becomes v2, a rollout starts from v1."""
    old = sim.apps["web"]
    sim.apps["web"] = app(V2, old.replicas or 0, daemon=old.is_daemon, **kw)
    sim.rollouts["web"] = start_rollout(
        "web", revision=2, from_revision=1, from_workload=old.workload,
        to_workload=sim.apps["web"].workload, canary=False, now=sim.now,
    )  # fmt: skip


def roll(sim: Sim, *, settle: bool = True) -> None:
    """One shell tick: step the rollout, run a pass, let every agent report."""
    rollout = sim.rollouts["web"]
    built = rollout_view(sim.apps["web"], rollout, sim.assignments, sim.registry.nodes)
    nxt, _ = step(rollout, built.view, sim.now + 1)
    if nxt.phase == "reverting" and rollout.phase != "reverting":
        sim.apps["web"] = restore_manifest(sim.apps["web"], nxt)
    sim.rollouts["web"] = nxt
    sim.step()
    sim.report(settle=settle)


def command_on(sim: Sim, node: str, replica: str) -> list[str] | None:
    doc = sim.docs.get(node)
    for w in doc.workloads if doc is not None else []:
        if w.name == replica:
            return list(w.spec.command or [])
    return None


def crash(sim: Sim, command: list[str]) -> None:
    """Every workload running ``command`` reports a crash loop (restarts 3)."""
    for node, doc in sim.docs.items():
        hit = {w.name for w in doc.workloads if list(w.spec.command or []) == command}
        record = sim.registry.nodes[node]
        if not hit or record.reported is None:
            continue
        workloads = {
            name: (replace_report(r) if name in hit else r)
            for name, r in record.reported.workloads.items()
        }
        reported = record.reported.model_copy(update={"workloads": workloads, "ts": sim.now})
        sim.registry.ingest(TopicKind.NODE_REPORTED, record.site, node, reported, sim.now)


def replace_report(r: WorkloadReport) -> WorkloadReport:
    return r.model_copy(update={"state": "failed", "restarts": 3})


# -- placement: a surge copies, keeps the old node charged, and skips it -------------------


def node(name: str, cores: float = 2.0) -> NodeView:
    return NodeView(
        node=name, site="s1", ready=True, cordoned=False, arch="aarch64",
        runtimes=frozenset({"simulated"}), cpu_cores=cores, memory_mb=1024, region="eu",
    )  # fmt: skip


def at(replica: str, where: str) -> Assignment:
    return Assignment(replica, "web", where, "s1", 0.5, 128)


@pytest.mark.parametrize(
    ("nodes", "running", "copied_to", "stuck"),
    [
        pytest.param(["n0", "n1", "n2"], {"web-0": "n0", "web-1": "n1"}, "n2", False,
                     id="a spare node takes the new copy"),
        pytest.param(["n0", "n1"], {"web-0": "n0", "web-1": "n1"}, None, True,
                     id="with one replica per node and no spare node the replica stays, stuck"),
    ],
)  # fmt: skip
def test_placement_copies_a_surging_replica_to_another_node_or_says_why_not(
    nodes: list[str], running: dict[str, str], copied_to: str | None, stuck: bool
) -> None:
    manifest = app(V1, 2)
    result = place_app(
        manifest,
        nodes=[node(n) for n in nodes],
        assignments=[at(r, n) for r, n in running.items()],
        surge=frozenset({"web-0"}),
    )
    where = {a.replica: a.node for a in result.assignments}
    assert where["web-0"] == (copied_to or "n0")
    assert where["web-1"] == "n1", "the other replica is left alone"
    assert ("web-0" in result.stuck) is stuck
    if stuck:
        assert any("max 1 replica per node" in r for r in result.stuck["web-0"]), result.stuck
    else:
        assert result.moves["web-0"] == ("n0", copied_to)


def test_a_surge_skips_its_own_node_even_when_that_node_ranks_best() -> None:
    """Without max_per_node, the own node (bigger, least allocated) ranks first: the copy
    still goes to another node, since a node's document names a replica once."""
    manifest = load_manifest(
        json.dumps({"name": "web", "replicas": 1, "workload": {"runtime": "simulated",
                    "resources": {"cpu": 0.5, "memory_mb": 128}}})
    )  # fmt: skip
    result = place_app(
        manifest,
        nodes=[node("n0", cores=16), node("n1")],
        assignments=[at("web-0", "n0")],
        surge=frozenset({"web-0"}),
    )
    assert result.moves["web-0"] == ("n0", "n1")


def test_the_placement_memo_does_not_answer_a_surge_with_the_pass_before_it() -> None:
    memo = PlacementMemo()
    nodes = [node("n0"), node("n1"), node("n2")]
    running = [at("web-0", "n0"), at("web-1", "n1")]
    first = place_all([app(V1, 2)], nodes, running, memo=memo)
    assert not first["web"].moves
    second = place_all([app(V1, 2)], nodes, running, memo=memo, surge={"web": frozenset({"web-0"})})
    assert second["web"].moves == {"web-0": ("n0", "n2")}
    assert memo.hits == 0


# -- whole passes ------------------------------------------------------------------------


def test_with_a_spare_node_the_new_copy_is_healthy_before_the_old_copy_stops() -> None:
    sim = fleet(nodes=4)
    before = sim.where("web")
    deploy_v2(sim, max_parallel=1)
    roll(sim, settle=False)  # web-0 released and copied; the copy is starting
    (copy,) = sim.control.retiring
    assert (copy.cause, copy.replica, copy.node) == ("rollout", "web-0", before["web-0"])
    spare = sim.where("web")["web-0"]
    assert spare != before["web-0"]
    assert command_on(sim, spare, "web-0") == V2
    assert command_on(sim, before["web-0"], "web-0") == V1, "the old copy runs v1, unchanged"
    assert sim.rollouts["web"].surged == {"web-0": spare}
    lowest = sim.running("web")
    for _ in range(30):
        roll(sim)
        lowest = min(lowest, sim.running("web"))
        if sim.rollouts["web"].phase == "succeeded" and not sim.control.retiring:
            break
    assert sim.rollouts["web"].phase == "succeeded"
    assert lowest == 3, "a replica was never down during the rollout"
    assert all(command_on(sim, n, r) == V2 for r, n in sim.where("web").items())
    assert set(sim.rollouts["web"].surged) == {"web-0", "web-1", "web-2"}
    assert not sim.rollouts["web"].in_place


def test_the_old_copy_is_kept_until_the_new_one_was_healthy_for_min_healthy_s() -> None:
    sim = fleet(nodes=4)
    old_node = sim.where("web")["web-0"]
    deploy_v2(sim, max_parallel=1, min_healthy_s=3)
    roll(sim)  # copied and (at once) running
    kept = 0
    while "web-0" not in sim.rollouts["web"].done:
        assert command_on(sim, old_node, "web-0") == V1
        kept += 1
        roll(sim)
    roll(sim)
    assert command_on(sim, old_node, "web-0") is None, "stopped once its replica was done"
    assert kept >= 3


def test_without_capacity_a_replica_updates_in_place_and_the_rollout_says_so() -> None:
    sim = fleet(nodes=3)
    before = sim.where("web")
    deploy_v2(sim, max_parallel=1)
    roll(sim)
    assert not sim.control.retiring
    assert sim.where("web") == before
    assert command_on(sim, before["web-0"], "web-0") == V2
    state = sim.rollouts["web"]
    assert state.in_place == {"web-0"} and not state.surged
    assert any(
        "updating web-0 in place" in r and "max 1 replica per node" in r for r in state.reasons
    ), state.reasons


def test_a_daemon_updates_in_place_without_asking_for_capacity() -> None:
    sim = Sim(apps={"web": app(V1, daemon=True)})
    for i in range(3):
        sim.join(f"n{i}")
    sim.settle()
    before = sim.where("web")
    deploy_v2(sim, max_parallel=1)
    roll(sim)
    assert sim.where("web") == before and not sim.control.retiring
    assert len(sim.rollouts["web"].in_place) == 1
    assert not any("in place" in r for r in sim.rollouts["web"].reasons)


def test_a_new_copy_that_fails_is_dropped_and_its_old_copy_runs_on_unrestarted() -> None:
    sim = fleet(nodes=4)
    before = sim.where("web")
    deploy_v2(sim, max_parallel=1, max_failed=3)
    roll(sim)
    spare = sim.where("web")["web-0"]
    old_doc = sim.docs[before["web-0"]]
    crash(sim, V2)
    roll(sim)
    state = sim.rollouts["web"]
    assert "crash-looping" in state.failed["web-0"]
    assert sim.where("web")["web-0"] == before["web-0"], "bound to its old copy again"
    assert command_on(sim, spare, "web-0") is None, "the new copy stops"
    assert command_on(sim, before["web-0"], "web-0") == V1
    assert sim.docs[before["web-0"]].generation == old_doc.generation, "the old node: no change"
    assert all(r.replica != "web-0" for r in sim.control.retiring)
    assert not state.runs_new("web-0")
    assert state.surged.get("web-1") == spare, "the next replica may take the freed node"


def test_auto_revert_keeps_the_old_copy_in_flight_and_reverts_a_moved_one_where_it_runs() -> None:
    sim = fleet(nodes=5)
    before = sim.where("web")
    deploy_v2(sim, max_parallel=2, auto_revert=True)
    roll(sim)  # web-0, web-1 copied
    while not {"web-0", "web-1"} <= sim.rollouts["web"].done:
        roll(sim)  # the step that finds them done releases web-2, which is copied
    state = sim.rollouts["web"]
    moved = sim.where("web")["web-0"]
    assert moved != before["web-0"]
    assert "web-2" in state.surged and "web-2" not in state.done
    crash(sim, V2)  # web-2's new copy crash-loops; max_failed 0: abort and revert
    roll(sim)
    assert sim.rollouts["web"].phase == "reverting"
    assert sim.where("web")["web-2"] == before["web-2"], "in flight: back on its old copy"
    assert sim.where("web")["web-0"] == moved, "done: stays on its new node"
    for _ in range(5):
        roll(sim)
    assert sim.rollouts["web"].phase == "reverted"
    assert all(command_on(sim, n, r) == V1 for r, n in sim.where("web").items())
    assert not sim.control.retiring


# -- the record that makes a restart restart nothing twice --------------------------------


@pytest.mark.parametrize(
    ("record", "asked"),
    [
        pytest.param({}, {"web-0"}, id="a released replica not yet decided is asked for"),
        pytest.param({"surged": {"web-0": "n3"}}, set(), id="a surged replica is not asked again"),
        pytest.param({"in_place": frozenset({"web-0"})}, set(),
                     id="a replica updated in place is not asked again"),
        pytest.param({"done": frozenset({"web-0"})}, set(), id="a done replica is not asked"),
    ],
)  # fmt: skip
def test_each_released_replica_is_decided_once(record: dict[str, Any], asked: set[str]) -> None:
    manifest = app(V2)
    state = replace(
        start_rollout("web", revision=2, from_revision=1, from_workload=app(V1).workload,
                      to_workload=manifest.workload, canary=False, now=0.0),
        released={"web-0": 1.0}, **record,
    )  # fmt: skip
    state = from_json(to_json(state))  # as a restarted orchestrator reads it
    out = requests({"web": manifest}, {"web": state}, [at("web-0", "n0")], (), {})
    assert set(out.surge.get("web", frozenset())) == asked


def test_a_rollout_stored_before_surges_counts_its_released_replicas_as_in_place() -> None:
    state = replace(
        start_rollout("web", revision=2, from_revision=1, from_workload=app(V1).workload,
                      to_workload=app(V2).workload, canary=False, now=0.0),
        released={"web-0": 1.0},
    )  # fmt: skip
    old = json.loads(to_json(state))
    del old["surged"], old["in_place"]
    assert from_json(json.dumps(old)).in_place == {"web-0"}


@pytest.mark.parametrize(
    ("fields", "runs_new"),
    [
        pytest.param({}, True, id="a released replica runs the new spec"),
        pytest.param({"surged": {"r": "n1"}, "failed": {"r": "x"}}, False,
                     id="a failed surge goes back to its old copy's spec"),
        pytest.param({"in_place": frozenset({"r"}), "failed": {"r": "x"}}, True,
                     id="a failed in-place update keeps the new spec (its agent reverts it)"),
        pytest.param({"surged": {"r": "n1"}, "phase": "failed"}, False,
                     id="a surge in flight when the rollout failed keeps its old copy"),
        pytest.param({"surged": {"r": "n1"}, "done": frozenset({"r"}), "phase": "failed"}, True,
                     id="a surge that was done stays on the new spec"),
    ],
)  # fmt: skip
def test_which_spec_a_released_replica_runs(fields: dict[str, Any], runs_new: bool) -> None:
    state: RolloutState = replace(
        start_rollout("web", revision=2, from_revision=1, from_workload=app(V1).workload,
                      to_workload=app(V2).workload, canary=False, now=0.0),
        released={"r": 1.0}, **fields,
    )  # fmt: skip
    assert state.runs_new("r") is runs_new


def test_a_rollout_copy_read_back_from_the_store_is_still_a_rollout_copy() -> None:
    """A restarted orchestrator must keep waiting for the rollout's verdict, not stop the
    old copy as soon as the new one runs (as it would for a drain's copy)."""
    copy = Retiring(at("web-0", "n0"), "n2", "rollout", 5.0)
    snapshot = StoreSnapshot(retiring=tuple(retiring_records(Control(retiring=(copy,)))))
    control, skipped = control_from_snapshot(snapshot)
    assert control.retiring == (copy,) and not skipped


def test_a_replica_a_superseded_rollout_had_moved_updates_in_place() -> None:
    """It runs the superseded rollout's target: as an old copy it would be restarted onto
    the start spec, so it changes spec where it runs, once."""
    sim = fleet(nodes=4)
    deploy_v2(sim, max_parallel=1)
    while "web-0" not in sim.rollouts["web"].done:
        roll(sim)
    roll(sim)
    on = sim.where("web")["web-0"]
    superseded = sim.rollouts["web"]
    v3 = ["/bin/app", "v3"]
    sim.apps["web"] = app(v3, 3, max_parallel=1)
    sim.rollouts["web"] = start_rollout(
        "web", revision=3, from_revision=2, from_workload=app(V2).workload,
        to_workload=sim.apps["web"].workload, canary=False, now=sim.now, superseded=superseded,
    )  # fmt: skip
    roll(sim)
    assert "web-0" in sim.rollouts["web"].in_place
    assert sim.where("web")["web-0"] == on
    assert command_on(sim, on, "web-0") == v3
    assert all(r.replica != "web-0" for r in sim.control.retiring)


def test_a_copy_in_flight_when_its_rollout_is_superseded_goes_on_to_the_newest_spec() -> None:
    sim = fleet(nodes=4)
    old_node = sim.where("web")["web-0"]
    deploy_v2(sim, max_parallel=1, min_healthy_s=5)
    roll(sim)
    new_node = sim.where("web")["web-0"]
    v3 = ["/bin/app", "v3"]
    sim.apps["web"] = app(v3, 3, max_parallel=1)
    sim.rollouts["web"] = start_rollout(
        "web", revision=3, from_revision=2, from_workload=app(V2).workload,
        to_workload=sim.apps["web"].workload, canary=False, now=sim.now,
        superseded=sim.rollouts["web"],
    )  # fmt: skip
    roll(sim)
    assert sim.rollouts["web"].surged.get("web-0") == new_node
    assert command_on(sim, old_node, "web-0") == V1, "the old copy keeps the start spec"
    assert command_on(sim, new_node, "web-0") == v3
    while "web-0" not in sim.rollouts["web"].done:
        roll(sim)
    roll(sim)
    assert command_on(sim, old_node, "web-0") is None
