"""``placement_preview``: where a manifest's replicas would go, from a trial pass over the
live view, with what happens to each (the ``replicas`` and ``unplaced`` of a ``plan``)."""

from __future__ import annotations

from edgefleet_orchestrator.reconcile.preview import placement_preview
from test_document_sizes import view_of
from test_reconcile import Fleet, app


def running(replicas: int) -> Fleet:
    fleet = Fleet()
    for n in ("a", "b", "c"):
        fleet.join(n)
    fleet.apps["web"] = app("web", replicas=replicas, placement={"max_per_node": 1})
    fleet.step()
    return fleet


def test_a_new_app_is_placed_and_the_view_is_left_as_it_was() -> None:
    fleet = running(1)
    before = (dict(fleet.apps), fleet.assignments)
    preview = placement_preview(app("api", replicas=2), view_of(fleet))
    assert preview["desired"] == 2 and preview["unplaced"] == []
    assert [r["change"] for r in preview["replicas"]] == ["placed", "placed"]
    assert len({r["node"] for r in preview["replicas"]}) == 2
    assert (dict(fleet.apps), fleet.assignments) == before


def test_scaling_up_keeps_what_runs_and_places_the_rest() -> None:
    fleet = running(2)
    where = fleet.where()
    preview = placement_preview(app("web", replicas=3, placement={"max_per_node": 1}),
                                view_of(fleet))  # fmt: skip
    rows = {r["replica"]: r for r in preview["replicas"]}
    assert {r: rows[r]["node"] for r in where} == where
    assert sorted(r["change"] for r in rows.values()) == ["kept", "kept", "placed"]


def test_scaling_down_names_the_stopped_replica_and_where_it_ran() -> None:
    fleet = running(3)
    where = fleet.where()
    preview = placement_preview(app("web", replicas=1, placement={"max_per_node": 1}),
                                view_of(fleet))  # fmt: skip
    stopped = [r for r in preview["replicas"] if r["change"] == "stopped"]
    assert len(stopped) == 2
    assert all(where[r["replica"]] == r["node"] for r in stopped)


def test_replicas_that_fit_nowhere_are_unplaced_with_the_reason() -> None:
    fleet = running(1)
    preview = placement_preview(app("web", replicas=5, placement={"max_per_node": 1}),
                                view_of(fleet))  # fmt: skip
    assert len(preview["replicas"]) == 3
    assert [u["count"] for u in preview["unplaced"]] == [2]
    assert preview["unplaced"][0]["reasons"]
