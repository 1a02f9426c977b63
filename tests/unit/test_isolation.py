"""One node's bad data never ends a reconcile pass (issue #12 defect 1): the node is
isolated with a reason and the others keep being scheduled."""

from __future__ import annotations

from dataclasses import replace

import pytest
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, PassResult, reconcile
from edgefleet_orchestrator.reconcile.isolation import (
    Isolation,
    reconcile_isolating,
    screen,
)
from edgefleet_protocol import Capabilities
from test_reconcile import Fleet, app


def fleet_with(*nodes: str) -> Fleet:
    fleet = Fleet()
    for node in nodes:
        fleet.join(node)
    fleet.apps["web"] = app("web")
    return fleet


def view_of(fleet: Fleet, **poison: dict[str, float]) -> FleetView:
    """The fleet's view, with the named nodes' capabilities poisoned."""
    nodes = {
        name: poisoned(record, **poison[name]) if name in poison else record
        for name, record in fleet.registry.nodes.items()
    }
    return FleetView(
        apps=fleet.apps,
        nodes=nodes,
        assignments=fleet.assignments,
        published=fleet.published,
        now=fleet.now,
        started_at=fleet.started_at,
    )


def poisoned(record: NodeRecord, **numbers: float) -> NodeRecord:
    """A record holding numbers no model admits any more (as before the bounds)."""
    assert record.capabilities is not None
    caps = Capabilities.model_construct(**{**dict(record.capabilities), **numbers})
    return replace(record, capabilities=caps)


def test_a_node_with_cpu_cores_1e308_crashed_the_pass_before_isolation() -> None:
    fleet = fleet_with("a", "b", "c")
    with pytest.raises(OverflowError):
        reconcile(view_of(fleet, b={"cpu_cores": 1e308}))


def test_the_screened_node_is_isolated_and_the_others_are_scheduled() -> None:
    fleet = fleet_with("a", "b", "c")
    result, isolated = reconcile_isolating(view_of(fleet, b={"cpu_cores": 1e308}), {})
    assert set(isolated) == {"b"}
    assert isolated["b"].screened
    assert "capabilities.cpu_cores" in isolated["b"].reason
    placed = {a.node for a in result.assignments}
    assert len(result.assignments) == 2
    assert placed <= {"a", "c"}


@pytest.mark.parametrize(
    "numbers",
    [
        {"cpu_cores": float("inf")},
        {"cpu_cores": float("nan")},
        {"memory_mb": 10**30},
        {"disk_mb": -1},
    ],
)
def test_the_screen_names_every_unusable_capability(numbers: dict[str, float]) -> None:
    fleet = fleet_with("a")
    reason = screen(poisoned(fleet.registry.nodes["a"], **numbers))
    assert reason is not None
    assert next(iter(numbers)) in reason


def test_a_clean_node_passes_the_screen() -> None:
    assert screen(fleet_with("a").registry.nodes["a"]) is None


def breaks_on(node: str) -> object:
    """A pass that fails whenever ``node`` is read: a bug no screen knows about."""

    def run(view: FleetView) -> PassResult:
        record = view.nodes.get(node)
        if record is not None and record.capabilities is not None:
            raise ZeroDivisionError("a bug")
        return reconcile(view)

    return run


def test_a_node_the_pass_fails_on_is_found_isolated_and_the_rest_placed() -> None:
    fleet = fleet_with(*(f"n{i}" for i in range(9)))
    result, isolated = reconcile_isolating(view_of(fleet), {}, run=breaks_on("n5"))  # type: ignore[arg-type]
    assert set(isolated) == {"n5"}
    assert "ZeroDivisionError" in isolated["n5"].reason
    assert not isolated["n5"].screened
    assert len(result.assignments) == 2
    assert "n5" not in {a.node for a in result.assignments}


def test_an_isolation_holds_until_the_node_sends_new_capabilities() -> None:
    fleet = fleet_with("a", "b")
    known = {"b": Isolation("b", "s1", "bug", 1.0, fleet.registry.nodes["b"].capabilities)}
    _, isolated = reconcile_isolating(view_of(fleet), known)
    assert set(isolated) == {"b"}
    fleet.join("b")  # a new capabilities message
    _, isolated = reconcile_isolating(view_of(fleet), isolated)
    assert isolated == {}


def test_a_failure_no_node_explains_is_raised() -> None:
    fleet = fleet_with("a", "b")

    def always(view: FleetView) -> PassResult:
        raise RuntimeError("app bug")

    with pytest.raises(RuntimeError):
        reconcile_isolating(view_of(fleet), {}, run=always)


def test_an_isolated_node_counts_as_offline_and_its_replicas_move_after_the_grace() -> None:
    fleet = fleet_with("a", "b")
    fleet.step()
    on_b = [a.replica for a in fleet.assignments if a.node == "b"]
    assert on_b
    bad = {"cpu_cores": 1e308}
    result, isolated = reconcile_isolating(view_of(fleet, b=bad), {})
    assert {a.replica: a.node for a in result.assignments if a.replica in on_b} == dict.fromkeys(
        on_b, "b"
    )  # within the grace, nothing moves
    fleet.now += 31
    result, _ = reconcile_isolating(view_of(fleet, b=bad), isolated)
    assert all(a.node == "a" for a in result.assignments)
