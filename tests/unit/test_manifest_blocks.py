"""The optional blocks of a manifest: every limit, default and refusal an author can meet.

Each limit is pinned from both sides (the last value accepted, the first refused with its
field and words), as examples/README.md ("Limits") and docs/protocol.md ("Scaling and
moves", "Rollouts", "Services") document them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol.manifest import (
    BUILTIN_METRICS,
    AppManifest,
    ManifestError,
    load_manifest,
    manifest_problems,
    share_of,
)
from test_manifest import with_changes

MAX_REPLICAS = 10_000
DAY = 24 * 3600


def placement(**fields: Any) -> dict[str, Any]:
    return with_changes(placement=fields)


def latency(target: str = "hub", ms: float = 50) -> dict[str, Any]:
    return placement(max_latency_ms={"target": target, "ms": ms})


def autoscale(**fields: Any) -> dict[str, Any]:
    """An autoscaled app without a count of its own (it starts at ``min``)."""
    block = {"metric": "cpu_pct", "target": 50, "max": 3} | fields
    return with_changes(autoscale=block, replicas=None)


def service(**fields: Any) -> dict[str, Any]:
    return with_changes(service=fields)


def update(**fields: Any) -> dict[str, Any]:
    return with_changes(update=fields)


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def load(data: dict[str, Any]) -> AppManifest:
    return load_manifest(json.dumps(data))


def refusal(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ManifestError) as caught:
        load(data)
    return caught.value.field, caught.value.reason


TOKEN_RULE = "1-63 characters of letters, digits, '.', '_', '/', ':', '-'"

# (why, manifest, field, the exact reason)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    # placement
    (
        "empty probe target",
        latency(target=""),
        "placement.max_latency_ms.target",
        "String should have at least 1 character",
    ),
    (
        "probe target of 64",
        latency(target="a" * 64),
        "placement.max_latency_ms.target",
        "String should have at most 63 characters",
    ),
    (
        "probe target with a space",
        latency(target="a b"),
        "placement.max_latency_ms.target",
        f"probe target 'a b' is not valid: {TOKEN_RULE}",
    ),
    (
        "latency of 0 ms",
        latency(ms=0),
        "placement.max_latency_ms.ms",
        "Input should be greater than 0",
    ),
    (
        "latency over 10 min",
        latency(ms=600_001),
        "placement.max_latency_ms.ms",
        "Input should be less than or equal to 600000",
    ),
    (
        "1025 sites",
        placement(sites=names("s", 1025)),
        "placement.sites",
        "List should have at most 1024 items after validation, not 1025",
    ),
    (
        "257 regions",
        placement(regions=names("r", 257)),
        "placement.regions",
        "List should have at most 256 items after validation, not 257",
    ),
    (
        "65 sensors",
        placement(sensors=names("s", 65)),
        "placement.sensors",
        "List should have at most 64 items after validation, not 65",
    ),
    (
        "33 accelerators",
        placement(accelerators=names("a", 33)),
        "placement.accelerators",
        "List should have at most 32 items after validation, not 33",
    ),
    (
        "17 archs",
        placement(arch=names("a", 17)),
        "placement.arch",
        "List should have at most 16 items after validation, not 17",
    ),
    (
        "sensor with a space",
        placement(sensors=["a b"]),
        "placement.sensors",
        f"sensor 'a b' is not valid: {TOKEN_RULE}",
    ),
    (
        "a site twice",
        placement(sites=["plant-a", "plant-a"]),
        "placement.sites",
        "lists a site more than once",
    ),
    (
        "a region with a space",
        placement(regions=["e u"]),
        "placement.regions",
        f"region 'e u' is not valid: {TOKEN_RULE}",
    ),
    (
        "accelerator twice",
        placement(accelerators=["gpu", "gpu"]),
        "placement.accelerators",
        "lists an accelerator more than once",
    ),
    (
        "arch with a space",
        placement(arch=["x 86"]),
        "placement.arch",
        f"arch 'x 86' is not valid: {TOKEN_RULE}",
    ),
    (
        "selector key with a space",
        placement(selector={"a b": "x"}),
        "placement.selector",
        f"label key 'a b' is not valid: {TOKEN_RULE}",
    ),
    (
        "selector_not value of 64",
        placement(selector_not={"k": "v" * 64}),
        "placement.selector_not",
        "label 'k': value longer than 63 characters",
    ),
    (
        "negative bandwidth",
        placement(min_bandwidth_mbps=-0.5),
        "placement.min_bandwidth_mbps",
        "Input should be greater than or equal to 0",
    ),
    (
        "bandwidth over 1 Tbps",
        placement(min_bandwidth_mbps=1_000_001),
        "placement.min_bandwidth_mbps",
        "Input should be less than or equal to 1000000",
    ),
    (
        "max_per_node over the replica bound",
        placement(max_per_node=MAX_REPLICAS + 1),
        "placement.max_per_node",
        "Input should be less than or equal to 10000",
    ),
    (
        "a label both required and forbidden",
        placement(selector={"zone": "a", "line": "3"}, selector_not={"zone": "a", "line": "3"}),
        "placement.selector_not.line",  # the first in name order
        "label line=3 is both required and forbidden",
    ),
    # disconnect
    (
        "negative grace",
        with_changes(disconnect={"grace_s": -1}),
        "disconnect.grace_s",
        "Input should be greater than or equal to 0",
    ),
    (
        "grace over 30 days",
        with_changes(disconnect={"grace_s": 30 * DAY + 1}),
        "disconnect.grace_s",
        "Input should be less than or equal to 2592000",
    ),
    # autoscale
    (
        "empty metric",
        autoscale(metric=""),
        "autoscale.metric",
        "String should have at least 1 character",
    ),
    (
        "metric of 64",
        autoscale(metric="m" * 64),
        "autoscale.metric",
        "String should have at most 63 characters",
    ),
    (
        "metric with a space",
        autoscale(metric="a b"),
        "autoscale.metric",
        f"metric 'a b' is not valid: {TOKEN_RULE}",
    ),
    ("target 0", autoscale(target=0), "autoscale.target", "Input should be greater than 0"),
    (
        "target over 1e12",
        autoscale(target=1e12 + 1),
        "autoscale.target",
        "Input should be less than or equal to 1000000000000",
    ),
    ("min 0", autoscale(min=0), "autoscale.min", "Input should be greater than or equal to 1"),
    (
        "min over the replica bound",
        {**autoscale(min=MAX_REPLICAS + 1, max=MAX_REPLICAS), "replicas": 5},
        "autoscale.min",
        "Input should be less than or equal to 10000",
    ),
    ("max 0", autoscale(max=0), "autoscale.max", "Input should be greater than or equal to 1"),
    (
        "max over the replica bound",
        autoscale(max=MAX_REPLICAS + 1),
        "autoscale.max",
        "Input should be less than or equal to 10000",
    ),
    (
        "no max",
        with_changes(autoscale={"metric": "cpu_pct", "target": 5}),
        "autoscale.max",
        "is required",
    ),
    ("min above max", autoscale(min=4, max=3), "autoscale.min", "4 is above max 3"),
    (
        "negative tolerance",
        autoscale(tolerance=-0.01),
        "autoscale.tolerance",
        "Input should be greater than or equal to 0",
    ),
    ("tolerance 1", autoscale(tolerance=1), "autoscale.tolerance", "Input should be less than 1"),
    (
        "negative scale-up cooldown",
        autoscale(scale_up_cooldown_s=-1),
        "autoscale.scale_up_cooldown_s",
        "Input should be greater than or equal to 0",
    ),
    (
        "scale-up cooldown over a day",
        autoscale(scale_up_cooldown_s=DAY + 1),
        "autoscale.scale_up_cooldown_s",
        "Input should be less than or equal to 86400",
    ),
    (
        "negative scale-down cooldown",
        autoscale(scale_down_cooldown_s=-1),
        "autoscale.scale_down_cooldown_s",
        "Input should be greater than or equal to 0",
    ),
    (
        "scale-down cooldown over a day",
        autoscale(scale_down_cooldown_s=DAY + 1),
        "autoscale.scale_down_cooldown_s",
        "Input should be less than or equal to 86400",
    ),
    # disruption
    (
        "max_unavailable 0",
        with_changes(disruption={"max_unavailable": 0}),
        "disruption.max_unavailable",
        "Input should be greater than or equal to 1",
    ),
    (
        "max_unavailable over the replica bound",
        with_changes(disruption={"max_unavailable": MAX_REPLICAS + 1}),
        "disruption.max_unavailable",
        "Input should be less than or equal to 10000",
    ),
    # service
    (
        "port 0",
        service(ports=[{"port": 0}]),
        "service.ports.0.port",
        "Input should be greater than or equal to 1",
    ),
    (
        "port 65536",
        service(ports=[{"port": 65536}]),
        "service.ports.0.port",
        "Input should be less than or equal to 65535",
    ),
    (
        "17 ports",
        service(ports=[{"name": f"p{i}", "port": 1000 + i} for i in range(17)]),
        "service.ports",
        "List should have at most 16 items after validation, not 17",
    ),
    (
        "two ports both named main",
        service(ports=[{"port": 1}, {"port": 2}]),
        "service.ports",
        "names a port more than once",
    ),
    (
        "one port number twice",
        service(ports=[{"name": "a", "port": 1}, {"name": "b", "port": 1}]),
        "service.ports",
        "lists a port number more than once",
    ),
    (
        "nothing to offer",
        service(),
        "service.ports",
        "needs at least one port (or an mqtt_group for message balancing)",
    ),
    (
        "udp",
        service(ports=[{"port": 1}], protocol="udp"),
        "service.protocol",
        "Input should be 'tcp'",
    ),
    (
        "unknown topology",
        service(ports=[{"port": 1}], topology="nearest"),
        "service.topology",
        "Input should be 'prefer-site', 'prefer-region' or 'any'",
    ),
    # update: shares
    (
        "max_parallel true",
        update(max_parallel=True),
        "update.max_parallel",
        "must be a count (e.g. 2) or a percentage of the replicas (e.g. '25%'), not a boolean",
    ),
    (
        "max_parallel 0",
        update(max_parallel=0),
        "update.max_parallel",
        "0 is out of range 1..10000 (at least one replica must be able to move)",
    ),
    (
        "max_parallel over the replica bound",
        update(max_parallel=MAX_REPLICAS + 1),
        "update.max_parallel",
        "10001 is out of range 1..10000 (at least one replica must be able to move)",
    ),
    (
        "max_parallel 0%",
        update(max_parallel="0%"),
        "update.max_parallel",
        "'0%' is out of range 1%..100% (at least one replica must be able to move)",
    ),
    (
        "max_parallel 101%",
        update(max_parallel="101%"),
        "update.max_parallel",
        "'101%' is out of range 1%..100% (at least one replica must be able to move)",
    ),
    (
        "max_parallel words",
        update(max_parallel="abc"),
        "update.max_parallel",
        "'abc' is not a count (e.g. 2) or a percentage of the replicas (e.g. '25%')",
    ),
    (
        "max_parallel a bare %",
        update(max_parallel="%"),
        "update.max_parallel",
        "'%' is not a count (e.g. 2) or a percentage of the replicas (e.g. '25%')",
    ),
    (
        "max_parallel a number without %",
        update(max_parallel="25"),
        "update.max_parallel",
        "'25' is not a count (e.g. 2) or a percentage of the replicas (e.g. '25%')",
    ),
    (
        "canary -1",
        update(canary=-1),
        "update.canary",
        "-1 is out of range 0..10000 (0 turns it off)",
    ),
    (
        "canary 101%",
        update(canary="101%"),
        "update.canary",
        "'101%' is out of range 0%..100% (0 turns it off)",
    ),
    (
        "canary false",
        update(canary=False),
        "update.canary",
        "must be a count (e.g. 2) or a percentage of the replicas (e.g. '25%'), not a boolean",
    ),
    (
        "max_failed over the replica bound",
        update(max_failed=MAX_REPLICAS + 1),
        "update.max_failed",
        "10001 is out of range 0..10000 (0 turns it off)",
    ),
    # update: times
    (
        "negative min_healthy_s",
        update(min_healthy_s=-1),
        "update.min_healthy_s",
        "Input should be greater than or equal to 0",
    ),
    (
        "min_healthy_s over a day",
        update(min_healthy_s=DAY + 1, healthy_deadline_s=DAY),
        "update.min_healthy_s",
        "Input should be less than or equal to 86400",
    ),
    (
        "healthy_deadline_s 0",
        update(healthy_deadline_s=0, min_healthy_s=0),
        "update.healthy_deadline_s",
        "Input should be greater than 0",
    ),
    (
        "healthy_deadline_s over a day",
        update(healthy_deadline_s=DAY + 1),
        "update.healthy_deadline_s",
        "Input should be less than or equal to 86400",
    ),
    (
        "progress_deadline_s 0",
        update(progress_deadline_s=0),
        "update.progress_deadline_s",
        "Input should be greater than 0",
    ),
    (
        "progress_deadline_s over a week",
        update(progress_deadline_s=7 * DAY + 1),
        "update.progress_deadline_s",
        "Input should be less than or equal to 604800",
    ),
    (
        "negative wave_pause_s",
        update(wave_pause_s=-1, waves="site"),
        "update.wave_pause_s",
        "Input should be greater than or equal to 0",
    ),
    (
        "wave_pause_s over a week",
        update(wave_pause_s=7 * DAY + 1, waves="site"),
        "update.wave_pause_s",
        "Input should be less than or equal to 604800",
    ),
    (
        "unknown waves",
        update(waves="rack"),
        "update.waves",
        "Input should be 'none', 'site' or 'region'",
    ),
    # update: values that must agree
    (
        "healthy deadline equal to min_healthy_s",
        update(healthy_deadline_s=5),
        "update.healthy_deadline_s",
        "5 must be above min_healthy_s 5"
        " (a replica could never be healthy for long enough in time)",
    ),
    (
        "healthy deadline below min_healthy_s",
        update(min_healthy_s=2.5, healthy_deadline_s=2),
        "update.healthy_deadline_s",
        "2 must be above min_healthy_s 2.5"
        " (a replica could never be healthy for long enough in time)",
    ),
    (
        "progress deadline below the healthy deadline",
        update(progress_deadline_s=119.5),
        "update.progress_deadline_s",
        "119.5 must be at least healthy_deadline_s 120 (no replica may take longer than the whole)",
    ),
    (
        "manual promotion without a canary",
        update(auto_promote=False),
        "update.auto_promote",
        "false needs a canary (there is nothing to promote without one)",
    ),
    (
        "manual promotion with a 0% canary",
        update(auto_promote=False, canary="0%"),
        "update.auto_promote",
        "false needs a canary (there is nothing to promote without one)",
    ),
    (
        "a wave pause without waves",
        update(wave_pause_s=10),
        "update.wave_pause_s",
        "needs waves: site or waves: region (there are no waves to pause between)",
    ),
]


@pytest.mark.parametrize(
    ("data", "field", "reason"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_a_bad_block_is_refused_naming_the_field_in_words(
    data: dict[str, Any], field: str, reason: str
) -> None:
    assert refusal(data) == (field, reason)


# (why, manifest, a dotted path in the loaded manifest, the value it holds): the last value
# each limit accepts, read back as given.
ACCEPTED: list[tuple[str, dict[str, Any], str, Any]] = [
    ("probe target of 63", latency(target="a" * 63), "placement.max_latency_ms.target", "a" * 63),
    ("a latency just above 0", latency(ms=0.001), "placement.max_latency_ms.ms", 0.001),
    ("a latency of 10 min", latency(ms=600_000), "placement.max_latency_ms.ms", 600_000),
    ("1024 sites", placement(sites=names("s", 1024)), "placement.sites", names("s", 1024)),
    ("256 regions", placement(regions=names("r", 256)), "placement.regions", names("r", 256)),
    ("64 sensors", placement(sensors=names("s", 64)), "placement.sensors", names("s", 64)),
    (
        "32 accelerators",
        placement(accelerators=names("a", 32)),
        "placement.accelerators",
        names("a", 32),
    ),
    ("16 archs", placement(arch=names("a", 16)), "placement.arch", names("a", 16)),
    ("no bandwidth", placement(min_bandwidth_mbps=0), "placement.min_bandwidth_mbps", 0),
    ("1 Tbps", placement(min_bandwidth_mbps=1_000_000), "placement.min_bandwidth_mbps", 1_000_000),
    ("max_per_node 1", placement(max_per_node=1), "placement.max_per_node", 1),
    (
        "max_per_node at the replica bound",
        placement(max_per_node=MAX_REPLICAS),
        "placement.max_per_node",
        MAX_REPLICAS,
    ),
    ("no grace", with_changes(disconnect={"grace_s": 0}), "disconnect.grace_s", 0),
    (
        "30 days of grace",
        with_changes(disconnect={"grace_s": 30 * DAY}),
        "disconnect.grace_s",
        30 * DAY,
    ),
    ("metric of 63", autoscale(metric="m" * 63), "autoscale.metric", "m" * 63),
    ("target just above 0", autoscale(target=0.001), "autoscale.target", 0.001),
    ("target 1e12", autoscale(target=1e12), "autoscale.target", 1e12),
    ("min equal to max", autoscale(min=3, max=3), "autoscale.min", 3),
    ("max at the replica bound", autoscale(max=MAX_REPLICAS), "autoscale.max", MAX_REPLICAS),
    (
        "min at the replica bound",
        autoscale(min=MAX_REPLICAS, max=MAX_REPLICAS),
        "autoscale.min",
        MAX_REPLICAS,
    ),
    ("no tolerance", autoscale(tolerance=0), "autoscale.tolerance", 0),
    ("tolerance just below 1", autoscale(tolerance=0.999), "autoscale.tolerance", 0.999),
    ("no scale-up cooldown", autoscale(scale_up_cooldown_s=0), "autoscale.scale_up_cooldown_s", 0),
    (
        "a day of scale-up cooldown",
        autoscale(scale_up_cooldown_s=DAY),
        "autoscale.scale_up_cooldown_s",
        DAY,
    ),
    (
        "no scale-down cooldown",
        autoscale(scale_down_cooldown_s=0),
        "autoscale.scale_down_cooldown_s",
        0,
    ),
    (
        "a day of scale-down cooldown",
        autoscale(scale_down_cooldown_s=DAY),
        "autoscale.scale_down_cooldown_s",
        DAY,
    ),
    (
        "max_unavailable at the replica bound",
        with_changes(disruption={"max_unavailable": MAX_REPLICAS}),
        "disruption.max_unavailable",
        MAX_REPLICAS,
    ),
    ("port 1", service(ports=[{"port": 1}]), "service.ports.0.port", 1),
    ("port 65535", service(ports=[{"port": 65535}]), "service.ports.0.port", 65535),
    (
        "16 ports",
        service(ports=[{"name": f"p{i}", "port": 1000 + i} for i in range(16)]),
        "service.ports.15.name",
        "p15",
    ),
    ("only an mqtt group", service(mqtt_group="ingest"), "service.ports", []),
    ("max_parallel 1", update(max_parallel=1), "update.max_parallel", 1),
    (
        "max_parallel at the replica bound",
        update(max_parallel=MAX_REPLICAS),
        "update.max_parallel",
        MAX_REPLICAS,
    ),
    ("max_parallel 1%", update(max_parallel="1%"), "update.max_parallel", "1%"),
    ("max_parallel 100%, spaced", update(max_parallel=" 100% "), "update.max_parallel", "100%"),
    ("canary 0%", update(canary="0%"), "update.canary", "0%"),
    ("canary at the replica bound", update(canary=MAX_REPLICAS), "update.canary", MAX_REPLICAS),
    (
        "manual promotion after a canary",
        update(auto_promote=False, canary=1),
        "update.auto_promote",
        False,
    ),
    ("max_failed 0%", update(max_failed="0%"), "update.max_failed", "0%"),
    ("no min_healthy_s", update(min_healthy_s=0), "update.min_healthy_s", 0),
    (
        "a day of healthy deadline",
        update(healthy_deadline_s=DAY, progress_deadline_s=DAY),
        "update.healthy_deadline_s",
        DAY,
    ),
    (
        "progress deadline equal to the healthy one",
        update(progress_deadline_s=120),
        "update.progress_deadline_s",
        120,
    ),
    (
        "a week of progress deadline",
        update(progress_deadline_s=7 * DAY),
        "update.progress_deadline_s",
        7 * DAY,
    ),
    (
        "deadlines just above 0",
        update(min_healthy_s=0, healthy_deadline_s=0.5, progress_deadline_s=0.5),
        "update.progress_deadline_s",
        0.5,
    ),
    (
        "a week of wave pause",
        update(wave_pause_s=7 * DAY, waves="region"),
        "update.wave_pause_s",
        7 * DAY,
    ),
]


def read(manifest: AppManifest, path: str) -> Any:
    value: Any = manifest
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return value


@pytest.mark.parametrize(
    ("data", "path", "value"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED]
)
def test_the_last_value_a_limit_allows_is_accepted(
    data: dict[str, Any], path: str, value: Any
) -> None:
    assert read(load(data), path) == value


def test_blocks_left_out_keep_the_documented_defaults() -> None:
    plain = load(with_changes())
    assert (plain.placement.strategy, plain.placement.spread) == ("spread", None)
    assert plain.placement.effective_spread == "node"
    assert plain.placement.max_per_node is None
    assert (plain.disconnect.grace_s, plain.disconnect.replace) == (30, True)
    assert (plain.disruption.max_unavailable, plain.disruption.rebalance) == (1, True)
    assert (plain.autoscale, plain.service, plain.update) == (None, None, None)


def test_an_empty_update_block_has_the_documented_defaults() -> None:
    upd = read(load(update()), "update")
    assert upd.model_dump() == {
        "max_parallel": "100%",
        "canary": 0,
        "auto_promote": True,
        "min_healthy_s": 5,
        "healthy_deadline_s": 120,
        "progress_deadline_s": 600,
        "auto_revert": False,
        "waves": "none",
        "wave_pause_s": 0,
        "max_failed": 0,
    }


def test_autoscale_and_service_defaults() -> None:
    scaling = read(load(autoscale()), "autoscale")
    assert (scaling.min, scaling.tolerance) == (1, 0.1)
    assert (scaling.scale_up_cooldown_s, scaling.scale_down_cooldown_s) == (30, 300)
    offered = read(load(service(ports=[{"port": 8080}])), "service")
    assert (offered.protocol, offered.topology, offered.mqtt_group) == ("tcp", "prefer-site", None)
    assert [(p.name, p.port) for p in offered.ports] == [("main", 8080)]


SPREADS: list[tuple[dict[str, Any], str | None]] = [
    ({}, "node"),
    ({"strategy": "binpack"}, None),
    ({"strategy": "binpack", "spread": "site"}, "site"),
    ({"spread": "site"}, "site"),
]


@pytest.mark.parametrize(("fields", "spread"), SPREADS)
def test_spread_defaults_to_node_for_spread_and_none_for_binpack(
    fields: dict[str, Any], spread: str | None
) -> None:
    assert load(placement(**fields)).placement.effective_spread == spread


# (share, replicas, least, count): a percentage rounds up; never more than the replicas,
# never below `least` while there are any.
SHARES: list[tuple[int | str, int, int, int]] = [
    ("25%", 10, 1, 3),
    ("25%", 8, 1, 2),
    ("100%", 7, 1, 7),
    ("100%", 250, 1, 250),
    ("1%", 101, 1, 2),  # 1.01 rounds up
    ("1%", 10, 1, 1),
    ("10%", 5, 0, 1),
    ("0%", 5, 0, 0),
    ("0%", 5, 1, 1),
    (0, 5, 0, 0),
    (0, 5, 1, 1),
    (3, 2, 1, 2),
    (2, 5, 1, 2),
    ("50%", 0, 1, 0),
    (4, 0, 1, 0),
]


@pytest.mark.parametrize(("share", "total", "least", "count"), SHARES)
def test_a_share_counts_replicas_as_documented(
    share: int | str, total: int, least: int, count: int
) -> None:
    assert share_of(share, total, least=least) == count


@pytest.mark.parametrize("value", [1.5, None, [1], {"n": 1}], ids=["float", "null", "list", "map"])
@pytest.mark.parametrize("field", ["max_parallel", "canary", "max_failed"])
def test_a_share_of_another_type_is_refused_not_a_crash(field: str, value: Any) -> None:
    # Regression: anything but a count or a string raised AttributeError (`.strip()`) out
    # of deploy and `edgefleet validate` instead of naming the field.
    data = update(**{field: value})
    expected = (
        f"update.{field}",
        f"must be a count (e.g. 2) or a percentage of the replicas (e.g. '25%'), "
        f"not {type(value).__name__}",
    )
    assert refusal(data) == expected
    assert [(p.field, p.reason) for p in manifest_problems(json.dumps(data))] == [expected]


def test_the_builtin_metrics_are_the_documented_two() -> None:
    # docs/protocol.md, "Scaling and moves": autoscale.metric is cpu_pct, memory_pct or a
    # custom per-workload metric.
    assert BUILTIN_METRICS == ("cpu_pct", "memory_pct")
    for metric in BUILTIN_METRICS:
        assert load(autoscale(metric=metric)).autoscale is not None
