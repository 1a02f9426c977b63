"""The memos the service keeps between passes (placement, replica specs) change no
decision: passes with them and without them, through the same changes, publish the same
documents and place the same replicas; a changed manifest is never answered from the memo."""

from __future__ import annotations

import random

from edgefleet_orchestrator.fleet.replicas import SpecCache, SpecMemo
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_protocol import Resources, spec_hash

from bench.placement import synthetic_apps
from bench.steady_pass import _Loop


def test_passes_with_the_services_memos_decide_exactly_what_passes_without_them() -> None:
    remembered = _Loop(40, 200, seed=4, memo=PlacementMemo())
    fresh = _Loop(40, 200, seed=4, memo=None)
    rng = random.Random(4)
    for step in range(12):
        if step in (3, 7):  # a new spec for one app: its replicas' documents change
            name = rng.choice(sorted(fresh.apps))
            app = fresh.apps[name]
            bigger = app.workload.resources.memory_mb + 16
            workload = app.workload.model_copy(
                update={"resources": Resources(cpu=app.workload.resources.cpu, memory_mb=bigger)}
            )
            for loop in (remembered, fresh):
                loop.apps[name] = app.model_copy(update={"workload": workload})
        if step == 5:  # an app scales up
            name = rng.choice(sorted(fresh.apps))
            for loop in (remembered, fresh):
                loop.apps[name] = loop.apps[name].model_copy(update={"replicas": 12})
        if step == 10:  # what was published is forgotten for one node: it is published again
            node = sorted(fresh.published)[0]
            for loop in (remembered, fresh):
                del loop.published[node]
        a, b = remembered.step(), fresh.step()
        if step == 10:
            assert node in {c.node for c in a.documents}
        assert a.placements == b.placements, f"step {step}"
        assert a.documents == b.documents, f"step {step}"
        assert a.assignments == b.assignments
    assert remembered.memo is not None and remembered.memo.hits > 0
    assert remembered.documents is not None and remembered.documents.hits > 0


def test_a_new_manifest_is_hashed_again_and_an_unchanged_one_is_not() -> None:
    app = synthetic_apps(10, random.Random(1))[0]
    replica = Assignment(
        replica=f"{app.name}-0",
        app=app.name,
        node="n1",
        site="s1",
        cpu=app.workload.resources.cpu,
        memory_mb=app.workload.resources.memory_mb,
    )
    memo = SpecMemo()
    memo.new_pass()
    first = SpecCache({app.name: app}, memo).spec_and_hash(replica)
    memo.new_pass()
    assert memo.get(app.workload, replica.cpu, replica.memory_mb) == first
    changed = app.model_copy(
        update={"workload": app.workload.model_copy(update={"command": ["sleep", "60"]})}
    )
    memo.new_pass()
    spec, digest = SpecCache({app.name: changed}, memo).spec_and_hash(replica)
    assert spec is changed.workload
    assert digest == spec_hash(changed.workload) != first[1]
    for _ in range(2):  # two passes without asking: the old manifest's entry is gone
        memo.new_pass()
    assert memo.get(app.workload, replica.cpu, replica.memory_mb) is None


def test_a_node_keeps_its_view_until_one_of_its_facts_changes() -> None:
    from edgefleet_orchestrator.placement.model import ViewCache, node_view_from
    from edgefleet_orchestrator.reconcile.fleet_pass import node_views

    from bench.steady_pass import registry_of

    registry = registry_of(5, random.Random(2), 1000.0)
    cache = ViewCache()
    first = node_views(registry.nodes, cache)
    again = node_views(registry.nodes, cache)
    assert all(a is b for a, b in zip(first, again, strict=True)), "nothing changed: same views"
    assert again == node_views(registry.nodes), "and equal to views built afresh"
    record = registry.nodes[first[0].node]
    caps = record.capabilities
    assert caps is not None
    probed = cache.view(caps, ready=True, latency_ms={"camera-hub": 1.0})
    assert probed == node_view_from(caps, ready=True, latency_ms={"camera-hub": 1.0})
    assert probed is not first[0] and dict(probed.latency_ms) == {"camera-hub": 1.0}
    assert cache.view(caps, ready=False, latency_ms={"camera-hub": 1.0}).ready is False
