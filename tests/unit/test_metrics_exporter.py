"""The orchestrator's metrics exporter, without a broker: histogram bookkeeping, the
``--metrics-addr`` parser, bounded per-node series, and a failing family that costs only
itself. The real scrape by a real Prometheus is tests/integration/test_metrics_prometheus.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from edgefleet_orchestrator.exporters.metrics import histogram, registry_for
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView
from edgefleet_orchestrator.service.config import Observations, ServiceStats
from edgefleet_protocol.scrape import AddressError, parse_address
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families


def fake_orchestrator(nodes: list[NodeRecord], **state: Any) -> Any:
    registry = SimpleNamespace(nodes={r.node: r for r in nodes})
    connected = asyncio.Event()
    return SimpleNamespace(
        state=SimpleNamespace(
            registry=registry,
            apps=state.get("apps", {}),
            statuses=state.get("statuses", {}),
            assignments=[],
            rollouts=state.get("rollouts", {}),
        ),
        services=SimpleNamespace(published=state.get("services", {})),
        stats=state.get("stats", ServiceStats()),
        session=SimpleNamespace(connected=connected),
        started_at=1.0,
    )


def samples(orch: Any, per_node_limit: int = 0) -> dict[str, float]:
    text = generate_latest(registry_for(orch, per_node_limit=per_node_limit)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_observations_count_each_value_in_the_first_bucket_that_holds_it() -> None:
    obs = Observations((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 7.0):
        obs.observe(v)
    assert obs.counts == [2, 1, 1]
    assert obs.count == 4
    assert obs.total == pytest.approx(7.65)


def test_histograms_are_exported_with_cumulative_buckets_and_inf() -> None:
    obs = Observations((0.1, 1.0))
    for v in (0.05, 0.5, 7.0):
        obs.observe(v)
    family = histogram("edgefleet_x_seconds", "x", obs)
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 1, "1.0": 2, "+Inf": 3}


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("[::1]:9464", "::1", 9464),
        (":9464", "0.0.0.0", 9464),
        ("localhost:1", "localhost", 1),
    ],
)
def test_metrics_addresses_parse(text: str, host: str, port: int) -> None:
    addr = parse_address(text)
    assert (addr.host, addr.port) == (host, port)


@pytest.mark.parametrize("text", ["9464", "host:", "host:http", "h:0", "h:70000", "::1:9464"])
def test_bad_metrics_addresses_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_node_counts_cover_every_state_even_at_zero() -> None:
    nodes = [
        NodeRecord(node="gw-1", site="a", state="online"),
        NodeRecord(node="gw-2", site="a", state="offline", cordoned=True),
    ]
    got = samples(fake_orchestrator(nodes))
    assert got["edgefleet_nodes{state=online}"] == 1
    assert got["edgefleet_nodes{state=offline}"] == 1
    assert got["edgefleet_nodes{state=stale}"] == 0
    assert got["edgefleet_nodes_cordoned{}"] == 1
    assert not any(k.startswith("edgefleet_node_") for k in got), "per-node series are opt-in"


def test_per_node_series_only_while_the_fleet_is_within_the_limit() -> None:
    nodes = [
        NodeRecord(node=f"gw-{i}", site="a", state="online", telemetry=TelemetryView(cpu_pct=50))
        for i in range(3)
    ]
    within = samples(fake_orchestrator(nodes), per_node_limit=3)
    assert within["edgefleet_node_cpu_ratio{node=gw-1,site=a}"] == 0.5
    assert within["edgefleet_per_node_metrics_suppressed{}"] == 0
    above = samples(fake_orchestrator(nodes), per_node_limit=2)
    assert above["edgefleet_per_node_metrics_suppressed{}"] == 1
    assert not any(k.startswith("edgefleet_node_cpu") for k in above)


def test_a_family_that_fails_is_left_out_and_counted_while_the_rest_are_served() -> None:
    orch = fake_orchestrator([NodeRecord(node="gw-1", site="a", state="online")])
    orch.state.apps = None  # a bug's worth of wrong state: the apps family cannot be built
    got = samples(orch)
    assert got["edgefleet_nodes{state=online}"] == 1
    assert got["edgefleet_metrics_errors_total{}"] == 1
    assert not any(k.startswith("edgefleet_apps") for k in got)


def test_invalid_messages_are_exported_for_every_reason_of_the_closed_set() -> None:
    stats = ServiceStats()
    stats.invalid_by_reason["topic"] = 2
    got = samples(fake_orchestrator([], stats=stats))
    reasons = {k for k in got if k.startswith("edgefleet_messages_invalid_total")}
    assert got["edgefleet_messages_invalid_total{reason=topic}"] == 2
    assert len(reasons) == 5


def test_rollouts_by_phase_and_the_service_catalog_are_counted() -> None:
    rollouts = {"web": SimpleNamespace(phase="canary"), "db": SimpleNamespace(phase="succeeded")}
    services = {"api": SimpleNamespace(endpoints=[1, 2, 3])}
    got = samples(fake_orchestrator([], rollouts=rollouts, services=services))
    assert got["edgefleet_rollouts{phase=canary}"] == 1
    assert got["edgefleet_rollouts{phase=succeeded}"] == 1
    assert got["edgefleet_rollouts{phase=reverted}"] == 0
    assert got["edgefleet_services{}"] == 1
    assert got["edgefleet_service_endpoints{}"] == 3
    assert got["edgefleet_metrics_errors_total{}"] == 0
