"""Presence faults that must move nothing: the orchestrator's own reconnect, a burst of
wills (a broker event), flapping nodes and nodes that just came back (issue #13)."""

from __future__ import annotations

from edgefleet_orchestrator.fleet.liveness import BurstPolicy, FlapPolicy, settled_online
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.filters import STATIC_FILTERS, FilterContext, first_rejection
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, node_views, offline_durations
from edgefleet_orchestrator.reconcile.status import fleet_summary
from edgefleet_orchestrator.service.handlers import node_row
from edgefleet_protocol import Capabilities, NodeStatus
from edgefleet_protocol.manifest import AppManifest
from edgefleet_protocol.topics import TopicKind

STATUS, CAPS = TopicKind.NODE_STATUS, TopicKind.NODE_CAPABILITIES


def status(node: str, state: str, session: int = 1) -> NodeStatus:
    return NodeStatus(node=node, site="s1", state=state, session=session, since=float(session))


def caps(node: str) -> Capabilities:
    return Capabilities(
        node=node, site="s1", arch="arm64", cpu_cores=4, memory_mb=1024, disk_mb=8000,
        runtimes=["process"],
    )  # fmt: skip


def fleet(*names: str, at: float = 0.0, **options: object) -> Registry:
    registry = Registry(**options)  # type: ignore[arg-type]
    for name in names:
        registry.ingest(CAPS, "s1", name, caps(name), at)
        registry.ingest(STATUS, "s1", name, status(name, "online"), at)
    return registry


def gone(registry: Registry, now: float) -> dict[str, float]:
    view = FleetView(apps={}, nodes=registry.nodes, assignments=[], published={}, now=now,
                     started_at=0.0)  # fmt: skip
    return offline_durations(view)


def test_the_orchestrators_reconnect_restarts_every_offline_clock() -> None:
    registry = fleet("n1", "n2")
    registry.ingest(STATUS, "s1", "n1", status("n1", "offline"), 10.0)
    assert gone(registry, 100.0) == {"n1": 90.0}
    # The orchestrator was away from 20 to 100: nothing it saw says n1 was gone for 90 s.
    assert registry.resume(100.0) == 1
    assert gone(registry, 105.0) == {"n1": 5.0}
    assert registry.nodes["n2"].last_heard == 100.0  # and nothing goes stale for it


def test_a_single_will_is_a_node_failure_not_a_broker_event() -> None:
    registry = fleet("n1", "n2", "n3")
    result = registry.ingest(STATUS, "s1", "n1", status("n1", "offline"), 10.0)
    assert result.broker_event is None
    assert gone(registry, 15.0) == {"n1": 5.0}


def test_a_burst_of_wills_is_a_broker_event_that_holds_every_grace_in_it() -> None:
    registry = fleet("n1", "n2", "n3", "n4", burst=BurstPolicy(nodes=3, window_s=1.0, hold_s=30))
    first = registry.ingest(STATUS, "s1", "n1", status("n1", "offline"), 10.0)
    registry.ingest(STATUS, "s1", "n2", status("n2", "offline"), 10.4)
    third = registry.ingest(STATUS, "s1", "n3", status("n3", "offline"), 10.8)
    assert first.broker_event is None
    assert third.broker_event is not None
    assert third.broker_event.startswith("broker event: 3 nodes went offline within 1 s")
    # Grace starts 30 s after the burst for all three: nothing is lost at 40 s with a 10 s grace.
    assert gone(registry, 40.0) == {"n1": 0.0, "n2": 0.0, "n3": 0.0}
    assert gone(registry, 50.8) == {"n1": 10.0, "n2": 10.0, "n3": 10.0}
    assert all(registry.nodes[n].flaps == () for n in ("n1", "n2", "n3"))
    late = registry.ingest(STATUS, "s1", "n4", status("n4", "offline"), 11.5)
    assert late.broker_event is None  # with only n3 in its window: no burst of its own


def test_wills_further_apart_than_the_window_are_separate_failures() -> None:
    registry = fleet("n1", "n2", "n3")
    for i, node in enumerate(("n1", "n2", "n3")):
        result = registry.ingest(STATUS, "s1", node, status(node, "offline"), 10.0 + 2 * i)
        assert result.broker_event is None


def test_a_node_leaving_online_too_often_is_flapping_and_placement_avoids_it() -> None:
    registry = fleet("n1", flap=FlapPolicy(max_flaps=2, window_s=100.0, settle_s=0.0))
    events = []
    for i in range(3):
        t = 10.0 * i
        events.append(registry.ingest(STATUS, "s1", "n1", status("n1", "offline"), t + 1).event)
        registry.ingest(STATUS, "s1", "n1", status("n1", "online"), t + 2)
    record = registry.nodes["n1"]
    assert record.flapping
    assert events[-1] is not None and "is flapping: it left online 3 times in 100 s" in events[-1]
    assert [e is not None and "flapping" in e for e in events] == [False, False, True]
    assert not record.schedulable
    [view] = node_views(registry.nodes)
    assert view.flapping and view.ready
    app = AppManifest.model_validate(
        {"name": "a", "replicas": 1, "workload": {"runtime": "process", "command": ["x"]}}
    )
    rejection = first_rejection(view, FilterContext.for_app(app), STATIC_FILTERS)
    assert rejection is not None and rejection.reason.startswith("flapping")
    # Steady for a whole window: the mark clears with an info event.
    changes = registry.sweep(21.0 + 100.0)
    assert [(c.level, c.reason) for c in changes] == [
        ("info", "node n1 (site s1) is no longer flapping")
    ]
    assert not registry.nodes["n1"].flapping


def test_a_returning_node_is_a_rebalancing_target_only_after_it_settled() -> None:
    registry = fleet("n1", "n2", at=0.0)
    settled, next_at = settled_online(registry.nodes, 1.0, 30.0)
    assert settled == {"n1", "n2"} and next_at is None  # a first sighting needs no settling
    registry.ingest(STATUS, "s1", "n2", status("n2", "offline"), 5.0)
    registry.ingest(STATUS, "s1", "n2", status("n2", "online", session=2), 6.0)
    settled, next_at = settled_online(registry.nodes, 7.0, 30.0)
    assert settled == {"n1"} and next_at == 36.0
    settled, next_at = settled_online(registry.nodes, 36.0, 30.0)
    assert settled == {"n1", "n2"} and next_at is None


def test_flapping_shows_in_the_fleet_summary_and_the_nodes_row() -> None:
    registry = fleet("n1", "n2", flap=FlapPolicy(max_flaps=1, window_s=100.0, settle_s=0.0))
    for t in (1.0, 3.0):
        registry.ingest(STATUS, "s1", "n1", status("n1", "offline"), t)
        registry.ingest(STATUS, "s1", "n1", status("n1", "online"), t + 1)
    summary = fleet_summary(registry.nodes, {}, now=5.0)
    assert (summary.nodes_online, summary.nodes_flapping) == (2, 1)
    assert node_row(registry.nodes["n1"], [])["flapping"] is True
    assert node_row(registry.nodes["n2"], [])["flapping"] is False
