"""Desired documents an agent would refuse as too large are found before a change is
accepted (issue #12 defect 2)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from edgefleet_orchestrator.reconcile import sizes
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView
from edgefleet_orchestrator.reconcile.isolation import reconcile_isolating
from edgefleet_orchestrator.reconcile.sizes import (
    DOCUMENT_LIMIT_BYTES,
    HEADROOM_BYTES,
    Oversize,
    document_bytes,
    oversized_for,
    size_bound,
    too_large,
)
from edgefleet_protocol.manifest import AppManifest
from test_reconcile import Fleet, app

ENV = {"BLOB": "x" * 100_000}


def view_of(fleet: Fleet) -> FleetView:
    return FleetView(
        apps=fleet.apps,
        nodes=fleet.registry.nodes,
        assignments=fleet.assignments,
        published=fleet.published,
        now=fleet.now,
        started_at=fleet.started_at,
    )


def fat(replicas: int, **placement: object) -> object:
    body = {
        "runtime": "simulated",
        "resources": {"cpu": 0.01, "memory_mb": 1},
        "env": ENV,
    }
    return app("fat", replicas=replicas, workload=body, placement=placement)


def test_fifteen_100_kb_replicas_on_one_node_are_found_too_large() -> None:
    fleet = Fleet()
    fleet.join("only")
    manifest = fat(15)
    found = oversized_for("fat", {"fat": manifest}, view_of(fleet))  # type: ignore[dict-item]
    assert [(o.node, o.replicas) for o in found] == [("only", 15)]
    assert found[0].bytes > 15 * 100_000
    assert found[0].replica_bytes > 100_000


def test_two_per_node_fit_and_three_do_not() -> None:
    fleet = Fleet()
    for n in ("a", "b", "c"):
        fleet.join(n)
    two = fat(6, max_per_node=2)
    assert oversized_for("fat", {"fat": two}, view_of(fleet)) == []  # type: ignore[dict-item]
    three = fat(9, max_per_node=3)
    found = oversized_for("fat", {"fat": three}, view_of(fleet))  # type: ignore[dict-item]
    assert sorted(o.node for o in found) == ["a", "b", "c"]
    assert all(o.bytes > DOCUMENT_LIMIT_BYTES - HEADROOM_BYTES for o in found)


def test_a_document_over_the_agent_limit_is_too_large_and_one_at_it_is_not() -> None:
    assert not too_large(b"x" * DOCUMENT_LIMIT_BYTES)
    assert too_large(b"x" * (DOCUMENT_LIMIT_BYTES + 1))


def blob(length: int, **placement: object) -> object:
    body = {"runtime": "simulated", "resources": {"cpu": 0.01, "memory_mb": 1},
            "env": {"BLOB": "x" * length}}  # fmt: skip
    return app("fat", replicas=1, workload=body, placement=placement)


def both(length: int) -> dict[str, AppManifest]:
    """``fat`` on the node labelled big, a small app ``other`` on the one labelled small."""
    other = app("other", replicas=1, placement={"selector": {"small": "yes"}})
    return {"fat": blob(length, selector={"big": "yes"}), "other": other}  # type: ignore[dict-item]


def test_the_limit_is_256_kib_less_1_kib_exactly_and_only_documents_holding_the_app_count() -> None:
    # docs/protocol.md: a document that would "exceed 256 KiB - 1 KiB" refuses the change.
    fleet = Fleet()
    fleet.join("a", labels={"small": "yes"})  # sorted first; its document holds another app
    fleet.join("b", labels={"big": "yes"})
    view = view_of(fleet)
    limit = 256 * 1024 - 1024

    def found(length: int) -> list[Oversize]:
        return oversized_for("fat", both(length), view)

    probe = 200_000
    at_limit = probe + limit - found_size(view, probe)
    assert found(at_limit) == []
    (over,) = found(at_limit + 1)
    assert (over.node, over.bytes, over.replicas) == ("b", limit + 1, 1)
    assert 200_000 < over.replica_bytes < over.bytes


def found_size(view: FleetView, length: int) -> int:
    """The size of the document holding one replica with a ``length``-byte env value."""
    (one,) = oversized_for("fat", both(length), view, limit=0)
    return one.bytes


def test_the_largest_document_comes_first_then_by_node() -> None:
    fleet = Fleet()
    for n in ("a", "b", "c"):
        fleet.join(n)
    found = oversized_for("fat", {"fat": fat(5, max_per_node=2)}, view_of(fleet), limit=0)  # type: ignore[dict-item]
    assert [o.bytes for o in found] == sorted((o.bytes for o in found), reverse=True)
    assert [o.replicas for o in found] == [2, 2, 1]
    ties = [o.node for o in found if o.replicas == 2]
    assert ties == sorted(ties)


def bounded_fleet() -> tuple[dict[str, AppManifest], FleetView]:
    fleet = Fleet()
    for n in ("a", "b", "c"):
        fleet.join(n)
    env = {"K": "v" * 300}
    sized = {"runtime": "simulated", "resources": {"cpu": 0.01, "memory_mb": 1}, "env": env}
    apps = {
        "d": app("d", mode="daemon"),
        "r": app("r", replicas=7, workload=sized),  # all seven may land on one node
        "s": app("s", replicas=1, autoscale={"metric": "cpu_pct", "target": 50, "max": 4}),
    }
    return apps, replace(view_of(fleet), apps=apps, published={})


def test_the_size_bound_is_above_every_document_a_trial_pass_makes() -> None:
    apps, view = bounded_fleet()
    result, _ = reconcile_isolating(view, {})
    bound = size_bound(apps, view)
    assert result.documents and bound is not None
    assert max(document_bytes(c.document) for c in result.documents) <= bound
    one_node = replace(view, nodes={"a": view.nodes["a"]})  # every replica on one node
    result, _ = reconcile_isolating(one_node, {})
    assert max(document_bytes(c.document) for c in result.documents) <= bound


def test_a_deploy_far_below_the_limit_needs_no_trial_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    apps, view = bounded_fleet()
    trials: list[object] = []
    monkeypatch.setattr(sizes, "reconcile_isolating", lambda *a: trials.append(a))
    assert oversized_for("d", apps, view) == [] and trials == []
    # While a drain is under way copies are not bounded: the trial pass decides.
    draining = replace(view, control=replace(view.control, drains={"a": object()}))  # type: ignore[dict-item]
    assert size_bound(apps, draining) is None
    with pytest.raises(TypeError):  # the stand-in trial returns nothing to unpack
        oversized_for("d", apps, draining)
    assert len(trials) == 1


def test_the_bound_holds_for_the_longest_names_packed_on_one_node_after_an_app_of_none() -> None:
    # The tightest case for the bound: replica names at the 63-character limit, twenty of
    # them in one document, so the per-entry slack is what keeps the bound above the
    # document; and an app scaled to zero listed first, which adds nothing and must not
    # end the sum early.
    fleet = Fleet()
    fleet.join("a")
    name = "n" * 60  # replicas "<name>-0" .. "<name>-19": up to 63 characters
    tiny = {"runtime": "simulated", "resources": {"cpu": 0.01, "memory_mb": 1}}
    apps = {"zero": app("zero", replicas=0), name: app(name, replicas=20, workload=tiny)}
    view = replace(view_of(fleet), apps=apps, published={})
    result, _ = reconcile_isolating(view, {})
    (only,) = result.documents
    assert len(only.document.workloads) == 20
    assert max(len(w.name) for w in only.document.workloads) == 63
    bound = size_bound(apps, view)
    assert bound is not None and document_bytes(only.document) <= bound
