"""Placement filters: one table per filter, with the exact reason text an operator reads."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_orchestrator.placement import NodeView, Rejection
from edgefleet_orchestrator.placement.filters import (
    DYNAMIC_FILTERS,
    STATIC_FILTERS,
    Filter,
    FilterContext,
    active,
    first_rejection,
    millicores,
)
from edgefleet_protocol import validate
from edgefleet_protocol.manifest import AppManifest

FILTERS: dict[str, Filter] = {f.name: f for f in STATIC_FILTERS + DYNAMIC_FILTERS}


def make_app(
    *, runtime: str = "process", cpu: float = 0.5, memory_mb: int = 256, **placement: Any
) -> AppManifest:
    workload: dict[str, Any] = {
        "runtime": runtime,
        "resources": {"cpu": cpu, "memory_mb": memory_mb},
    }
    if runtime == "process":
        workload["command"] = ["sleep", "infinity"]
    if runtime == "docker":
        workload["image"] = "busybox:1.36"
    data = {"name": "app", "replicas": 1, "workload": workload, "placement": placement}
    return validate(AppManifest, data, forbid_unknown=True)


def make_node(**fields: Any) -> NodeView:
    base: dict[str, Any] = {
        "node": "gw-1",
        "site": "s1",
        "ready": True,
        "cordoned": False,
        "arch": "aarch64",
        "runtimes": frozenset({"process", "docker"}),
        "cpu_cores": 4.0,
        "memory_mb": 2048,
        "labels": {"zone": "a"},
        "region": "eu",
        "sensors": frozenset({"camera"}),
        "accelerators": frozenset({"tpu"}),
        "latency_ms": {"camera-hub": 20.0},
        "bandwidth_mbps": 100.0,
    }
    base.update(fields)
    return NodeView(**base)


def run(name: str, node: NodeView, app: AppManifest, **ctx_fields: Any) -> Rejection | None:
    ctx = FilterContext.for_app(app)
    for key, value in ctx_fields.items():
        setattr(ctx, key, value)
    return FILTERS[name].check(node, ctx)


# (filter, app placement/workload, node fields, context fields, expected reason or None,
#  expected detail)
Case = tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], str | None, str]

CASES: list[tuple[str, Case]] = [
    ("a ready node passes", ("ready", {}, {}, {}, None, "")),
    ("an offline node is refused", ("ready", {}, {"ready": False}, {}, "offline", "")),
    ("a node not lost passes", ("lost", {}, {}, {"lost": frozenset({"gw-9"})}, None, "")),
    (
        "a lost node is refused",
        (
            "lost",
            {},
            {},
            {"lost": frozenset({"gw-1"})},
            "lost (offline beyond grace)",
            "",
        ),
    ),
    ("a cordoned node is refused", ("cordon", {}, {"cordoned": True}, {}, "cordoned", "")),
    ("an uncordoned node passes", ("cordon", {}, {}, {}, None, "")),
    (
        "a node without the runtime is refused",
        (
            "runtime",
            {"runtime": "docker"},
            {"runtimes": frozenset({"process"})},
            {},
            "runtime docker not available",
            "",
        ),
    ),
    ("a node with the runtime passes", ("runtime", {"runtime": "docker"}, {}, {}, None, "")),
    (
        "a node of another arch is refused",
        (
            "arch",
            {"arch": ["aarch64", "x86_64"]},
            {"arch": "armv7l"},
            {},
            "arch armv7l not in [aarch64, x86_64]",
            "",
        ),
    ),
    ("a node of a listed arch passes", ("arch", {"arch": ["aarch64"]}, {}, {}, None, "")),
    ("any arch passes when none is asked", ("arch", {}, {"arch": "riscv64"}, {}, None, "")),
    (
        "a node of another site is refused",
        ("site", {"sites": ["s2", "s3"]}, {}, {}, "site s1 not in [s2, s3]", ""),
    ),
    ("a node of a listed site passes", ("site", {"sites": ["s1"]}, {}, {}, None, "")),
    (
        "a node of another region is refused",
        ("region", {"regions": ["eu"]}, {"region": "us"}, {}, "region us not in [eu]", ""),
    ),
    (
        "a node with no region is refused when one is needed",
        ("region", {"regions": ["eu"]}, {"region": None}, {}, "no region, needs [eu]", ""),
    ),
    ("a node of a listed region passes", ("region", {"regions": ["eu", "ch"]}, {}, {}, None, "")),
    (
        "a node missing a selected label is refused",
        ("labels", {"selector": {"role": "gw"}}, {}, {}, "label role=gw required", ""),
    ),
    (
        "a node with another label value is refused",
        ("labels", {"selector": {"zone": "b"}}, {}, {}, "label zone=b required", ""),
    ),
    (
        "a node with the selected label passes",
        ("labels", {"selector": {"zone": "a"}}, {}, {}, None, ""),
    ),
    (
        "a node with a forbidden label is refused",
        ("labels", {"selector_not": {"zone": "a"}}, {}, {}, "label zone=a forbidden", ""),
    ),
    (
        "a node without the forbidden label value passes",
        ("labels", {"selector_not": {"zone": "b"}}, {}, {}, None, ""),
    ),
    (
        "the first missing label in key order is named",
        (
            "labels",
            {"selector": {"b": "1", "a": "1"}},
            {"labels": {}},
            {},
            "label a=1 required",
            "",
        ),
    ),
    (
        "a node without a sensor is refused",
        ("sensors", {"sensors": ["camera", "lidar"]}, {}, {}, "no sensor lidar", ""),
    ),
    ("a node with every sensor passes", ("sensors", {"sensors": ["camera"]}, {}, {}, None, "")),
    (
        "a node without an accelerator is refused",
        ("accelerators", {"accelerators": ["gpu"]}, {}, {}, "no accelerator gpu", ""),
    ),
    (
        "a node with the accelerator passes",
        ("accelerators", {"accelerators": ["tpu"]}, {}, {}, None, ""),
    ),
    (
        "a node without the probe is refused",
        (
            "latency-probe",
            {"max_latency_ms": {"target": "camera-hub", "ms": 50}},
            {"latency_ms": {"cloud": 5.0}},
            {},
            "no latency probe for camera-hub",
            "",
        ),
    ),
    (
        "a node over the latency limit is refused",
        (
            "latency",
            {"max_latency_ms": {"target": "camera-hub", "ms": 50}},
            {"latency_ms": {"camera-hub": 80.0}},
            {},
            "latency to camera-hub > 50 ms",
            "80 ms measured",
        ),
    ),
    (
        "a node exactly at the latency limit passes",
        (
            "latency",
            {"max_latency_ms": {"target": "camera-hub", "ms": 50}},
            {"latency_ms": {"camera-hub": 50.0}},
            {},
            None,
            "",
        ),
    ),
    (
        "a node that reports no bandwidth is refused",
        (
            "bandwidth-known",
            {"min_bandwidth_mbps": 10},
            {"bandwidth_mbps": None},
            {},
            "no bandwidth reported",
            "",
        ),
    ),
    (
        "a node without bandwidth passes when none is asked",
        ("bandwidth-known", {}, {"bandwidth_mbps": None}, {}, None, ""),
    ),
    (
        "a node under the bandwidth minimum is refused",
        (
            "bandwidth",
            {"min_bandwidth_mbps": 10},
            {"bandwidth_mbps": 2.5},
            {},
            "bandwidth < 10 Mbps",
            "2.5 Mbps reported",
        ),
    ),
    (
        "a node at the bandwidth minimum passes",
        ("bandwidth", {"min_bandwidth_mbps": 10}, {"bandwidth_mbps": 10.0}, {}, None, ""),
    ),
    (
        "a node at the per-node limit is refused",
        (
            "max-per-node",
            {"max_per_node": 1},
            {},
            {"replicas_on": {"gw-1": 1}},
            "max 1 replica per node",
            "",
        ),
    ),
    (
        "the per-node limit is plural above one",
        (
            "max-per-node",
            {"max_per_node": 2},
            {},
            {"replicas_on": {"gw-1": 2}},
            "max 2 replicas per node",
            "",
        ),
    ),
    (
        "a node under the per-node limit passes",
        ("max-per-node", {"max_per_node": 2}, {}, {"replicas_on": {"gw-1": 1}}, None, ""),
    ),
    (
        "a node short of memory is refused",
        (
            "resources",
            {"memory_mb": 512},
            {"memory_mb": 1024},
            {"used_memory_mb": {"gw-1": 960}},
            "not enough memory (512 MB needed)",
            "64/1024 MB free",
        ),
    ),
    (
        "a node short of cpu is refused",
        (
            "resources",
            {"cpu": 1.5},
            {"cpu_cores": 2.0},
            {"used_cpu_m": {"gw-1": 1000}},
            "not enough cpu (1.5 cores needed)",
            "1/2 cores free",
        ),
    ),
    (
        "a node that fits exactly passes",
        (
            "resources",
            {"cpu": 1.0, "memory_mb": 1024},
            {"cpu_cores": 2.0, "memory_mb": 2048},
            {"used_cpu_m": {"gw-1": 1000}, "used_memory_mb": {"gw-1": 1024}},
            None,
            "",
        ),
    ),
    (
        "an overcommitted node reports no negative free memory",
        (
            "resources",
            {"memory_mb": 64},
            {"memory_mb": 1024},
            {"used_memory_mb": {"gw-1": 2000}},
            "not enough memory (64 MB needed)",
            "0/1024 MB free",
        ),
    ),
]


@pytest.mark.parametrize("case", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_each_filter_passes_or_refuses_with_its_reason(case: Case) -> None:
    name, app_fields, node_fields, ctx_fields, reason, detail = case
    app = make_app(**app_fields)
    rejection = run(name, make_node(**node_fields), app, **ctx_fields)
    if reason is None:
        assert rejection is None
    else:
        assert rejection == Rejection(name, reason, detail)


def test_a_rejection_prints_its_detail_after_the_reason() -> None:
    assert str(Rejection("latency", "latency to hub > 50 ms", "80 ms measured")) == (
        "latency to hub > 50 ms (80 ms measured)"
    )
    assert str(Rejection("cordon", "cordoned")) == "cordoned"


def test_the_pipeline_order_is_presence_then_facts_then_measurements_then_capacity() -> None:
    assert [f.name for f in STATIC_FILTERS] == [
        "ready",
        "lost",
        "cordon",
        "runtime",
        "arch",
        "site",
        "region",
        "labels",
        "sensors",
        "accelerators",
        "latency-probe",
        "latency",
        "bandwidth-known",
        "bandwidth",
    ]
    assert [f.name for f in DYNAMIC_FILTERS] == ["max-per-node", "host-port", "resources"]


def test_a_node_failing_several_filters_reports_the_first_in_order() -> None:
    app = make_app(regions=["eu"], selector={"zone": "b"})
    node = make_node(ready=False, region="us")
    ctx = FilterContext.for_app(app)
    assert first_rejection(node, ctx, STATIC_FILTERS) == Rejection("ready", "offline")
    online = make_node(region="us")
    assert first_rejection(online, ctx, STATIC_FILTERS) == Rejection(
        "region", "region us not in [eu]"
    )


def test_hard_constraints_evict_but_presence_and_missing_data_do_not() -> None:
    evicting = {f.name for f in STATIC_FILTERS + DYNAMIC_FILTERS if f.evicts}
    assert evicting == {
        "runtime",
        "arch",
        "site",
        "region",
        "labels",
        "sensors",
        "accelerators",
        "latency",
        "bandwidth",
        "max-per-node",
    }


def test_only_filters_for_constraints_the_app_sets_are_active() -> None:
    plain = [f.name for f in active(STATIC_FILTERS, make_app())]
    assert plain == ["ready", "lost", "cordon", "runtime"]
    constrained = make_app(regions=["eu"], max_latency_ms={"target": "hub", "ms": 5})
    assert [f.name for f in active(STATIC_FILTERS, constrained)] == [
        *plain,
        "region",
        "latency-probe",
        "latency",
    ]
    assert [f.name for f in active(DYNAMIC_FILTERS, make_app())] == ["resources"]
    assert [f.name for f in active(DYNAMIC_FILTERS, make_app(max_per_node=1))] == [
        "max-per-node",
        "resources",
    ]


def test_every_check_passes_an_app_without_constraints_on_a_healthy_node() -> None:
    app = make_app()
    node = make_node(latency_ms={}, bandwidth_mbps=None, labels={}, region=None)
    ctx = FilterContext.for_app(app)
    assert [f.name for f in STATIC_FILTERS + DYNAMIC_FILTERS if f.check(node, ctx)] == []


@pytest.mark.parametrize(("cpu", "expected"), [(0.1, 100), (0.25, 250), (1.5, 1500), (2, 2000)])
def test_cpu_is_counted_in_whole_millicores(cpu: float, expected: int) -> None:
    assert millicores(cpu) == expected


def test_ten_tenth_cores_fill_exactly_one_core_without_float_drift() -> None:
    app = make_app(cpu=0.1)
    ctx = FilterContext.for_app(app)
    node = make_node(cpu_cores=1.0, memory_mb=100_000)
    for _ in range(10):
        assert FILTERS["resources"].check(node, ctx) is None
        ctx.charge(node.node, ctx.cpu_m, ctx.memory_mb)
    rejection = FILTERS["resources"].check(node, ctx)
    assert rejection is not None
    assert rejection.reason == "not enough cpu (0.1 cores needed)"
