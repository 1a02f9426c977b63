"""The fleet simulator's plan: which gateways exist and what each one's device looks like.

Pure (plain values in, plain values out): :func:`plan_fleet` turns a count, sites, device
profiles and a seed into one :class:`NodePlan` per simulated gateway, and
:func:`pick_nodes` chooses fault victims. ``edgefleet_agent.simulate.fleet`` builds real
agents from the plan; unit tests hold the draws to their ranges and to determinism.

Determinism: every node draws from its own RNG seeded by ``(seed, index)``, so node 17 is
the same device whether the fleet has 50 or 5,000 nodes, and two runs with one seed
simulate identical fleets (``random.Random`` seeded by a string does not depend on
``PYTHONHASHSEED``).

The device model, per node:

* the profile: round-robin over the (weighted) profile list, or a seeded weighted draw;
* ``bandwidth_mbps``: the profile's nominal link rate times a factor in
  [``BANDWIDTH_FACTOR_MIN``, 1] (links rarely deliver their nominal rate);
* ``latency_ms``: one round trip per probe target (``broker`` and each named probe, such
  as ``camera-hub``), each drawn from the profile's ``link.latency_ms`` range;
* a steady idle load (CPU, memory, disk), so report-by-exception telemetry stays quiet
  until workloads change it;
* ``heartbeat_s``: the fleet's heartbeat times a factor in 1 ± ``HEARTBEAT_JITTER``, so
  10,000 gateways do not send their full telemetry in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from edgefleet_protocol import ProtocolError, validate_id
from edgefleet_protocol.profiles import Profile

from edgefleet_agent.settings import SettingsError

Assignment = Literal["round-robin", "random"]
ASSIGNMENTS: tuple[Assignment, ...] = ("round-robin", "random")
BANDWIDTH_FACTOR_MIN = 0.5
HEARTBEAT_JITTER = 0.1
IDLE_CPU_PCT = (2.0, 8.0)
IDLE_MEMORY_PCT = (12.0, 30.0)
DISK_PCT = (10.0, 45.0)
BROKER_PROBE = "broker"


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One simulated gateway: identity, device and link, all fixed for the run."""

    index: int
    node: str
    site: str
    profile: str
    bandwidth_mbps: float
    latency_ms: Mapping[str, float]
    heartbeat_s: float
    idle_cpu_pct: float
    idle_memory_pct: float
    disk_pct: float
    address: str
    runtime_seed: int


@dataclass(frozen=True, slots=True)
class FleetShape:
    """What :func:`plan_fleet` needs; ``weights`` maps profile id to a positive weight
    (every profile once when empty)."""

    count: int
    sites: int
    profiles: Mapping[str, Profile]
    seed: int = 0
    prefix: str = "sim"
    weights: Mapping[str, int] = field(default_factory=dict)
    assign: Assignment = "round-robin"
    probes: Sequence[str] = ("camera-hub",)
    heartbeat_s: float = 60.0


def site_name(index: int) -> str:
    return f"site-{index}"


def node_name(prefix: str, site: str, index: int) -> str:
    return f"{prefix}-{site}-{index}"


def check_shape(shape: FleetShape) -> None:
    """Refuse a shape no fleet can have, naming the setting (``SettingsError``)."""
    if shape.count <= 0:
        raise SettingsError("count", f"must be at least 1, got {shape.count}")
    if shape.sites <= 0:
        raise SettingsError("sites", f"must be at least 1, got {shape.sites}")
    if shape.sites > shape.count:
        raise SettingsError(
            "sites", f"{shape.sites} sites cannot each hold one of {shape.count} node(s)"
        )
    try:
        validate_id(shape.prefix, kind="prefix")
    except ProtocolError as exc:
        raise SettingsError("prefix", exc.reason) from None
    longest = node_name(shape.prefix, site_name(shape.sites - 1), shape.count - 1)
    try:
        validate_id(longest, kind="node")
    except ProtocolError as exc:
        raise SettingsError(
            "prefix", f"node id {longest!r} would be invalid: {exc.reason}"
        ) from None
    if not shape.profiles:
        raise SettingsError("profiles", "no device profiles to build nodes from")
    unknown = sorted(set(shape.weights) - set(shape.profiles))
    if unknown:
        raise SettingsError(
            "profile",
            f"unknown profile {unknown[0]!r} (available: {', '.join(sorted(shape.profiles))})",
        )
    for profile_id, weight in shape.weights.items():
        if weight < 1:
            raise SettingsError("profile", f"weight of {profile_id!r} must be >= 1, got {weight}")
    for probe in shape.probes:
        try:
            validate_id(probe, kind="probe")
        except ProtocolError as exc:
            raise SettingsError("probe", exc.reason) from None
        if probe == BROKER_PROBE:
            raise SettingsError("probe", "'broker' is always simulated; name other targets")
    if shape.heartbeat_s < 1:
        raise SettingsError("heartbeat_s", f"must be >= 1, got {shape.heartbeat_s:g}")


def weighted_profiles(shape: FleetShape) -> list[str]:
    """The profile ids in assignment order: sorted, each repeated by its weight."""
    weights = shape.weights or dict.fromkeys(shape.profiles, 1)
    return [pid for pid in sorted(weights) for _ in range(weights[pid])]


def node_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"edgefleet-sim:{seed}:{index}")


def plan_node(shape: FleetShape, index: int, order: Sequence[str]) -> NodePlan:
    rng = node_rng(shape.seed, index)
    randomly = shape.assign == "random"
    profile_id = rng.choice(order) if randomly else order[index % len(order)]
    profile = shape.profiles[profile_id]
    link = profile.link
    latency = {
        name: round(rng.uniform(link.latency_ms.min, link.latency_ms.max), 2)
        for name in (BROKER_PROBE, *shape.probes)
    }
    site_index = index % shape.sites
    site = site_name(site_index)
    return NodePlan(
        index=index,
        node=node_name(shape.prefix, site, index),
        site=site,
        profile=profile_id,
        bandwidth_mbps=round(link.bandwidth_mbps * rng.uniform(BANDWIDTH_FACTOR_MIN, 1.0), 1),
        latency_ms=latency,
        heartbeat_s=round(
            shape.heartbeat_s * rng.uniform(1 - HEARTBEAT_JITTER, 1 + HEARTBEAT_JITTER), 2
        ),
        idle_cpu_pct=round(rng.uniform(*IDLE_CPU_PCT), 1),
        idle_memory_pct=round(rng.uniform(*IDLE_MEMORY_PCT), 1),
        disk_pct=round(rng.uniform(*DISK_PCT), 1),
        address=f"10.{site_index % 256}.{index // 256 % 256}.{index % 256}",
        runtime_seed=rng.getrandbits(32),
    )


def plan_fleet(shape: FleetShape) -> list[NodePlan]:
    """Every node of the fleet, by index; raises ``SettingsError`` on an impossible shape."""
    check_shape(shape)
    order = weighted_profiles(shape)
    nodes = [plan_node(shape, index, order) for index in range(shape.count)]
    check_unique(nodes)
    return nodes


def check_unique(nodes: Sequence[NodePlan]) -> None:
    """Node ids name MQTT client ids and topics: two nodes with one id would take over each
    other's connection forever. Generated plans are unique by construction; hand-made
    ones (the programmatic API accepts any list) are checked here."""
    seen: set[str] = set()
    for plan in nodes:
        if plan.node in seen:
            raise SettingsError("nodes", f"duplicate node id {plan.node!r}")
        seen.add(plan.node)


def spread_indices(count: int, chosen: int) -> list[int]:
    """``chosen`` indices out of ``range(count)``, evenly spread (so faultable nodes cover
    every site under round-robin site assignment)."""
    chosen = max(0, min(chosen, count))
    return [j * count // chosen for j in range(chosen)]


def pick_nodes(candidates: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` distinct victims from ``candidates`` (sorted, so the draw depends only on the
    RNG and the candidate set, not on dict order); all of them when ``n`` is larger."""
    pool = sorted(candidates)
    if n >= len(pool):
        return pool
    return sorted(rng.sample(pool, n))
