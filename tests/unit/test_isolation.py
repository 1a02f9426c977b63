"""One node's bad data never ends a reconcile pass (issue #12 defect 1): the node is
isolated with a reason and the others keep being scheduled."""

from __future__ import annotations

from dataclasses import replace

import pytest
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, PassResult, reconcile
from edgefleet_orchestrator.reconcile.isolation import (
    Isolation,
    quarantined,
    reconcile_isolating,
    screen,
)
from edgefleet_protocol import Capabilities
from edgefleet_protocol.bounds import (
    MAX_BANDWIDTH_MBPS,
    MAX_CPU_CORES,
    MAX_CPU_PCT,
    MAX_DISK_MB,
    MAX_LATENCY_MS,
    MAX_LOAD,
    MAX_MEMORY_MB,
    MAX_METRIC,
)
from edgefleet_protocol.node_messages import NetworkInfo, WorkloadUsage
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
        read = sum(r.capabilities is not None for r in view.nodes.values())
        raise RuntimeError(f"app bug with {read} nodes read")

    # The whole fleet's error, raised at once: no node was blamed and left out first.
    with pytest.raises(RuntimeError, match="app bug with 2 nodes read"):
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


def numbers_at(path: str, value: object) -> NodeRecord:
    """A clean node's record with the one number at ``path`` set to ``value``."""
    record = fleet_with("a").registry.nodes["a"]
    assert record.capabilities is not None
    kind, _, rest = path.partition(".")
    if kind == "capabilities":
        if rest.startswith("network."):
            net = NetworkInfo.model_construct(bandwidth_mbps=value)
            return replace(
                record, capabilities=record.capabilities.model_copy(update={"network": net})
            )
        return poisoned(record, **{rest: value})  # type: ignore[arg-type]
    head, _, key = rest.partition(".")
    if head in ("latency_ms", "metrics"):
        return replace(record, telemetry=TelemetryView(**{head: {key: value}}))  # type: ignore[arg-type]
    if head == "workloads":
        workload, _, field = key.partition(".")
        if field.startswith("metrics."):
            usage = WorkloadUsage.model_construct(metrics={field.split(".")[1]: value})
        else:
            usage = WorkloadUsage.model_construct(**{field: value})
        return replace(record, telemetry=TelemetryView(workloads={workload: usage}))
    return replace(record, telemetry=TelemetryView(**{head: value}))  # type: ignore[arg-type]


# Every number placement and scaling read, with the bounds the protocol models admit.
SCREENED = [
    ("capabilities.cpu_cores", 0.001, MAX_CPU_CORES),
    ("capabilities.memory_mb", 1, MAX_MEMORY_MB),
    ("capabilities.disk_mb", 0, MAX_DISK_MB),
    ("capabilities.network.bandwidth_mbps", 0, MAX_BANDWIDTH_MBPS),
    ("telemetry.cpu_pct", 0, MAX_CPU_PCT),
    ("telemetry.memory_pct", 0, 100),
    ("telemetry.disk_pct", 0, 100),
    ("telemetry.load1", 0, MAX_LOAD),
    ("telemetry.latency_ms.gw", 0, MAX_LATENCY_MS),
    ("telemetry.metrics.depth", -MAX_METRIC, MAX_METRIC),
    ("telemetry.workloads.w-0.cpu_pct", 0, MAX_CPU_PCT),
    ("telemetry.workloads.w-0.memory_mb", 0, MAX_MEMORY_MB),
    ("telemetry.workloads.w-0.metrics.depth", -MAX_METRIC, MAX_METRIC),
]


@pytest.mark.parametrize(("path", "low", "high"), SCREENED)
def test_the_screen_admits_each_bound_and_names_what_lies_past_it(
    path: str, low: float, high: float
) -> None:
    assert screen(numbers_at(path, low)) is None
    assert screen(numbers_at(path, high)) is None
    below = low - 0.0005 if low == 0.001 else low - 1
    assert screen(numbers_at(path, below)) == f"{path} = {below!r} is outside [{low}, {high}]"
    above = high * 2
    assert screen(numbers_at(path, above)) == f"{path} = {above!r} is outside [{low}, {high}]"
    assert screen(numbers_at(path, "7")) == f"{path} is not a number (str)"
    assert screen(numbers_at(path, True)) == f"{path} is not a number (bool)"


def breaks_on_all(*nodes: str, message: str = "a bug") -> object:
    """A pass that fails while any of ``nodes`` is read."""

    def run(view: FleetView) -> PassResult:
        for node in nodes:
            record = view.nodes.get(node)
            if record is not None and record.capabilities is not None:
                raise ZeroDivisionError(message)
        return reconcile(view)

    return run


def test_up_to_eight_failing_nodes_are_isolated_in_one_pass_with_their_reason() -> None:
    fleet = fleet_with(*(f"n{i}" for i in range(10)))
    bad = [f"n{i}" for i in range(1, 9)]
    view = view_of(fleet)
    result, isolated = reconcile_isolating(view, {}, run=breaks_on_all(*bad, message="x" * 300))  # type: ignore[arg-type]
    assert sorted(isolated) == bad
    iso = isolated["n3"]
    assert (iso.node, iso.site, iso.since, iso.screened) == ("n3", "s1", view.now, False)
    assert iso.capabilities is view.nodes["n3"].capabilities
    assert iso.reason == (
        f"the reconcile pass fails with this node's data (ZeroDivisionError: {'x' * 200})"
    )
    assert {a.node for a in result.assignments} <= {"n0", "n9"}


def test_a_ninth_failing_node_in_one_pass_is_not_one_nodes_data() -> None:
    fleet = fleet_with(*(f"n{i}" for i in range(10)))
    with pytest.raises(ZeroDivisionError):
        reconcile_isolating(view_of(fleet), {}, run=breaks_on_all(*(f"n{i}" for i in range(9))))  # type: ignore[arg-type]


def test_a_failure_that_needs_two_nodes_together_is_no_single_nodes_and_is_raised() -> None:
    fleet = fleet_with("n0", "n1", "n2", "n3")

    def both(view: FleetView) -> PassResult:
        if all(view.nodes[n].capabilities is not None for n in ("n1", "n2")):
            raise ZeroDivisionError("the two together")
        return reconcile(view)

    with pytest.raises(ZeroDivisionError):
        reconcile_isolating(view_of(fleet), {}, run=both)


def test_a_screened_node_keeps_its_first_since_and_is_released_once_it_passes() -> None:
    fleet = fleet_with("a", "b")
    bad = {"cpu_cores": 1e308}
    _, isolated = reconcile_isolating(view_of(fleet, b=bad), {})
    first = isolated["b"].since
    fleet.now += 50
    _, again = reconcile_isolating(view_of(fleet, b=bad), isolated)
    assert again["b"].since == first != fleet.now
    assert again["b"].capabilities is not None
    # The same capabilities message, but now clean: released without waiting for new ones.
    clean = fleet.registry.nodes["b"].capabilities
    held = {"b": replace(again["b"], capabilities=clean)}
    _, released = reconcile_isolating(view_of(fleet), held)
    assert released == {}


def test_an_isolated_node_is_seen_as_offline_since_isolated_with_nothing_read() -> None:
    record = replace(fleet_with("a").registry.nodes["a"], telemetry=TelemetryView(load1=2.0))
    seen = quarantined(record, Isolation("a", "s1", "bug", 42.0))
    assert (seen.state, seen.offline_since, seen.capabilities, seen.reported) == (
        "offline", 42.0, None, None,
    )  # fmt: skip
    assert seen.telemetry == TelemetryView()
    assert (seen.node, seen.site) == ("a", "s1")
