"""A burst of one node's telemetry, coalesced (merge_all, Registry.ingest_telemetry), must
leave exactly the view and record that merging the messages one by one leaves."""

from __future__ import annotations

from functools import reduce

from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.fleet.telemetry import TelemetryView, merge_all, merge_telemetry
from edgefleet_protocol import NodeStatus, Telemetry, TopicKind, WorkloadUsage
from hypothesis import given, settings
from hypothesis import strategies as st

VALUE = st.none() | st.floats(min_value=0, max_value=100, allow_nan=False)
KEYS = st.sampled_from(["a", "b", "c"])
USAGE = st.builds(
    WorkloadUsage,
    cpu_pct=VALUE,
    memory_mb=VALUE,
    memory_pct=VALUE,
    metrics=st.dictionaries(KEYS, st.floats(0, 10), max_size=2),
)
TELEMETRY = st.builds(
    Telemetry,
    node=st.just("gw-1"),
    site=st.just("s-1"),
    ts=st.floats(0, 1e6),
    full=st.booleans(),
    cpu_pct=VALUE,
    memory_pct=VALUE,
    disk_pct=VALUE,
    load1=VALUE,
    latency_ms=st.dictionaries(KEYS, st.floats(0, 100), max_size=2),
    metrics=st.dictionaries(KEYS, st.floats(0, 10), max_size=2),
    workloads=st.dictionaries(st.sampled_from(["w1", "w2"]), USAGE, max_size=2),
)


@settings(max_examples=120, deadline=None)
@given(start=st.lists(TELEMETRY, max_size=2), burst=st.lists(TELEMETRY, min_size=1, max_size=6))
def test_a_coalesced_burst_leaves_the_view_merging_one_by_one_leaves(
    start: list[Telemetry], burst: list[Telemetry]
) -> None:
    view = reduce(merge_telemetry, start, TelemetryView())
    assert merge_all(view, burst) == reduce(merge_telemetry, burst, view)


@settings(max_examples=50, deadline=None)
@given(burst=st.lists(TELEMETRY, min_size=1, max_size=6))
def test_the_registry_record_is_the_same_whether_a_burst_is_coalesced_or_not(
    burst: list[Telemetry],
) -> None:
    one_by_one, coalesced = Registry(stale_after_s=30), Registry(stale_after_s=30)
    online = NodeStatus(node="gw-1", site="s-1", state="online", session=1, since=0)
    for registry in (one_by_one, coalesced):
        registry.ingest(TopicKind.NODE_STATUS, "s-1", "gw-1", online, 1.0)
    for message in burst:
        one_by_one.ingest(TopicKind.NODE_TELEMETRY, "s-1", "gw-1", message, 2.0)
    result = coalesced.ingest_telemetry("s-1", "gw-1", burst, 2.0)
    assert coalesced.nodes["gw-1"] == one_by_one.nodes["gw-1"]
    assert result.record == one_by_one.nodes["gw-1"]
