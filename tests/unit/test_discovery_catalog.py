"""The endpoint catalog: which replicas are endpoints, their weights, and which retained
service messages change (only on change; a gone service's last entry then its clear)."""

from __future__ import annotations

from typing import Any

from edgefleet_orchestrator.discovery.catalog import Clear, Publish, catalog, changes, weight_for
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement import Assignment
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.scaling.autoscale import observe_service
from edgefleet_orchestrator.scaling.moves import Retiring
from edgefleet_orchestrator.service.services import ServiceBoard
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_protocol import (
    Capabilities,
    NodeStatus,
    Reported,
    ServiceEndpoints,
    Telemetry,
    TopicKind,
    Topics,
    WorkloadReport,
    decode,
    validate,
)
from edgefleet_protocol.manifest import AppManifest

WEB: dict[str, Any] = {
    "name": "web",
    "replicas": 2,
    "workload": {"runtime": "process", "command": ["srv"], "health": {"kind": "tcp", "port": 8080}},
    "service": {"ports": [{"name": "http", "port": 8080}], "topology": "prefer-site"},
}


def fleet(reports: dict[str, dict[str, Any]], load1: dict[str, float] | None = None) -> Registry:
    registry = Registry()
    for node, workloads in reports.items():
        site = f"site-{node}"
        caps = Capabilities(
            node=node, site=site, arch="x86_64", cpu_cores=2, memory_mb=1024, disk_mb=1,
            runtimes=["process"], region="eu",
        )  # fmt: skip
        registry.ingest(TopicKind.NODE_CAPABILITIES, site, node, caps, 1.0)
        status = NodeStatus(node=node, site=site, state="online", session=1, since=1.0)
        registry.ingest(TopicKind.NODE_STATUS, site, node, status, 1.0)
        reported = Reported(
            node=node, site=site, observed_generation=1, session=1, ts=2.0,
            workloads={n: WorkloadReport(**w) for n, w in workloads.items()},
        )  # fmt: skip
        registry.ingest(TopicKind.NODE_REPORTED, site, node, reported, 2.0)
        if load1 and node in load1:
            telemetry = Telemetry(node=node, site=site, ts=3.0, full=True, load1=load1[node])
            registry.ingest(TopicKind.NODE_TELEMETRY, site, node, telemetry, 3.0)
    return registry


def serving(state: str = "running", health: str = "healthy", **extra: Any) -> dict[str, Any]:
    return {
        "app": "web", "spec_hash": "sha256:1", "state": state, "health": health, "since": 1.0,
        "address": "127.0.0.2", "ports": {"http": 8080}, **extra,
    }  # fmt: skip


ASSIGNED = [
    Assignment("web-0", "web", "a", "site-a", 0.1, 64),
    Assignment("web-1", "web", "b", "site-b", 0.1, 64),
]


def test_only_running_healthy_replicas_with_an_address_are_endpoints() -> None:
    app = validate(AppManifest, WEB)
    for b_report, listed in [
        (serving(), {"a", "b"}),
        (serving(health="none"), {"a", "b"}),
        (serving(health="unhealthy"), {"a"}),
        (serving(state="starting", health="unknown"), {"a"}),
        ({**serving(), "address": None}, {"a"}),
    ]:
        registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": b_report}})
        entry = catalog({"web": app}, ASSIGNED, registry.nodes)["web"]
        assert {e.node for e in entry.endpoints} == listed
    first = entry.endpoints[0]
    assert (first.address, first.port, first.site, first.region) == (
        "127.0.0.2",
        8080,
        "site-a",
        "eu",
    )
    assert entry.topology == "prefer-site" and entry.ports == {"http": 8080}


def test_without_a_health_check_running_is_serving() -> None:
    plain = {**WEB, "workload": {"runtime": "process", "command": ["srv"]}}
    app = validate(AppManifest, plain)
    b_report = serving(health="unknown")
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": b_report}})
    entry = catalog({"web": app}, ASSIGNED, registry.nodes)["web"]
    assert {e.node for e in entry.endpoints} == {"a", "b"}


def test_weight_falls_with_load_per_core_in_steps_and_never_below_100() -> None:
    registry = fleet({"a": {}, "b": {}, "c": {}, "d": {}}, load1={"b": 0.5, "c": 1.0, "d": 9.0})
    weights = {n: weight_for(r) for n, r in registry.nodes.items()}
    assert weights == {"a": 1000, "b": 700, "c": 500, "d": 100}


def test_a_change_is_published_once_with_a_rising_revision_and_a_gone_service_cleared() -> None:
    app = validate(AppManifest, WEB)
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": serving()}})
    current = catalog({"web": app}, ASSIGNED, registry.nodes)
    first = changes({}, current, now=100.0)
    assert [type(c) for c in first] == [Publish]
    published = {"web": first[0].entry}  # type: ignore[union-attr]
    assert published["web"].revision == 100_000 and published["web"].updated_at == 100.0
    assert changes(published, current, now=101.0) == []  # same content: nothing
    fewer = catalog({"web": app}, ASSIGNED[:1], registry.nodes)
    second = changes(published, fewer, now=100.0)  # a clock that did not move still rises
    assert second[0].entry.revision == 100_001  # type: ignore[union-attr]
    gone = changes(published, {}, now=102.0)
    assert [type(c) for c in gone] == [Clear]
    assert gone[0].last.endpoints == []  # type: ignore[union-attr]


def test_service_metrics_are_summed_over_consumers_and_shared_over_running_replicas() -> None:
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": serving()}, "c": {}})
    for node, rate in (("a", 30.0), ("c", 50.0)):
        msg = Telemetry(node=node, site=f"site-{node}", ts=4.0, full=True,
                        metrics={"proxy.web.connections_per_s": rate})  # fmt: skip
        registry.ingest(TopicKind.NODE_TELEMETRY, f"site-{node}", node, msg, 4.0)
    seen = observe_service("service.connections_per_s", "web", ASSIGNED, registry.nodes)
    assert (seen.value, seen.samples, seen.running) == (40.0, 2, 2)
    nothing = observe_service("service.bytes_per_s", "web", ASSIGNED, registry.nodes)
    assert nothing.value is None


def test_the_old_copy_of_a_moving_replica_stays_an_endpoint_until_it_stops() -> None:

    one = {**WEB, "replicas": 1}
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-0": serving(state="starting")}})
    moving = Retiring(copy=ASSIGNED[0], to_node="b", cause="drain", since=1.0)
    state = ControlState(
        apps={"web": validate(AppManifest, one)}, registry=registry,
        assignments=[Assignment("web-0", "web", "b", "site-b", 0.1, 64)],
        control=Control(retiring=(moving,)), clock=lambda: 5.0,
    )  # fmt: skip
    (pub,) = ServiceBoard(Topics("edgefleet/v1")).publications(state, now=5.0)
    entry = decode(ServiceEndpoints, pub.payload)
    assert [(e.node, e.replica) for e in entry.endpoints] == [("a", "web-0")]


class _Watched(list[Assignment]):
    """Assignments that record which ones the catalog read."""

    def __init__(self, items: list[Assignment]) -> None:
        super().__init__(items)
        self.read: list[str] = []

    def __iter__(self) -> Any:
        for a in super().__iter__():
            self.read.append(a.app)
            yield a


def test_the_catalog_reads_no_assignment_when_no_app_serves() -> None:
    """Regression: the shell asks for the catalog after every node report, and it grouped
    every assignment of the fleet each time (a deploy to N nodes cost N x N)."""
    plain = validate(AppManifest, {**WEB, "name": "batch", "service": None})
    others = [Assignment(f"batch-{i}", "batch", "a", "site-a", 0.1, 64) for i in range(50)]
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": serving()}})
    unserved = _Watched(others)
    assert catalog({"batch": plain}, unserved, registry.nodes) == {}
    assert unserved.read == [], "no app serves: the assignments are not looked at"
    web = validate(AppManifest, WEB)
    mixed = _Watched([*others, *ASSIGNED])
    entry = catalog({"batch": plain, "web": web}, mixed, registry.nodes)["web"]
    assert {e.node for e in entry.endpoints} == {"a", "b"}


def test_the_board_reads_no_assignment_while_no_app_serves_and_publishes_once_one_does() -> None:
    """Regression: the board listed every assignment of the fleet after every node report
    even when no app declared a service."""
    plain = validate(AppManifest, {**WEB, "name": "batch", "service": None})
    registry = fleet({"a": {"web-0": serving()}, "b": {"web-1": serving()}})
    others = _Watched([Assignment(f"batch-{i}", "batch", "a", "site-a", 0.1, 64) for i in range(9)])
    state = ControlState(apps={"batch": plain}, registry=registry, assignments=others)
    board = ServiceBoard(Topics("t"))
    assert board.publications(state, now=1.0) == []
    assert others.read == []
    state.apps["web"] = validate(AppManifest, WEB)
    state.assignments = [*others, *ASSIGNED]
    assert [p.topic for p in board.publications(state, now=2.0)] == ["t/services/web"]
    del state.apps["web"]  # gone: its last entry and the clear still go out
    assert len(board.publications(state, now=3.0)) == 2
