"""The fleet simulator's plan: node ids, sites, profile assignment and per-node draws."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from edgefleet_agent.settings import SettingsError
from edgefleet_agent.simulate.plan import (
    BANDWIDTH_FACTOR_MIN,
    HEARTBEAT_JITTER,
    FleetShape,
    NodePlan,
    check_unique,
    pick_nodes,
    plan_fleet,
    spread_indices,
)
from edgefleet_protocol import validate_id
from edgefleet_protocol.profiles import Profile, load_profiles

PROFILES_DIR = Path(__file__).resolve().parents[2] / "device-profiles"


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles(PROFILES_DIR)


def shape(known: dict[str, Profile], **overrides: object) -> FleetShape:
    values: dict[str, object] = {"count": 30, "sites": 3, "profiles": known}
    values.update(overrides)
    return FleetShape(**values)  # type: ignore[arg-type]


def test_node_ids_name_prefix_site_and_index_and_sites_go_round_robin(
    profiles: dict[str, Profile],
) -> None:
    nodes = plan_fleet(shape(profiles, count=7, sites=3, prefix="lab"))
    assert [n.node for n in nodes] == [
        "lab-site-0-0",
        "lab-site-1-1",
        "lab-site-2-2",
        "lab-site-0-3",
        "lab-site-1-4",
        "lab-site-2-5",
        "lab-site-0-6",
    ]
    assert [n.site for n in nodes] == [f"site-{i % 3}" for i in range(7)]
    assert all(validate_id(n.node) == n.node for n in nodes)


def test_round_robin_cycles_through_the_profiles_in_sorted_order(
    profiles: dict[str, Profile],
) -> None:
    nodes = plan_fleet(shape(profiles, count=2 * len(profiles), sites=1))
    ordered = sorted(profiles)
    assert [n.profile for n in nodes] == ordered + ordered


def test_weights_repeat_a_profile_in_the_rotation(profiles: dict[str, Profile]) -> None:
    weights = {"raspberry-pi-4b-4gb": 3, "teltonika-rutx11": 1}
    nodes = plan_fleet(shape(profiles, count=8, sites=2, weights=weights))
    assert Counter(n.profile for n in nodes) == {"raspberry-pi-4b-4gb": 6, "teltonika-rutx11": 2}


def test_random_assignment_is_seeded_and_follows_the_weights(
    profiles: dict[str, Profile],
) -> None:
    weights = {"raspberry-pi-4b-4gb": 9, "teltonika-rutx11": 1}
    first = plan_fleet(shape(profiles, count=2000, sites=4, weights=weights, assign="random"))
    again = plan_fleet(shape(profiles, count=2000, sites=4, weights=weights, assign="random"))
    assert first == again
    share = Counter(n.profile for n in first)["raspberry-pi-4b-4gb"] / 2000
    assert 0.85 < share < 0.95


@pytest.mark.parametrize("assign", ["round-robin", "random"])
def test_every_draw_stays_inside_the_profile_ranges(
    profiles: dict[str, Profile], assign: str
) -> None:
    for node in plan_fleet(shape(profiles, count=300, sites=5, assign=assign, seed=11)):
        link = profiles[node.profile].link
        assert link.bandwidth_mbps * BANDWIDTH_FACTOR_MIN <= node.bandwidth_mbps
        assert node.bandwidth_mbps <= link.bandwidth_mbps
        assert set(node.latency_ms) == {"broker", "camera-hub"}
        for ms in node.latency_ms.values():
            assert link.latency_ms.min <= ms <= link.latency_ms.max
        assert 60 * (1 - HEARTBEAT_JITTER) <= node.heartbeat_s <= 60 * (1 + HEARTBEAT_JITTER)
        assert 0 < node.idle_cpu_pct < 100 and 0 < node.idle_memory_pct < 100


def test_one_seed_gives_the_same_fleet_and_another_seed_a_different_one(
    profiles: dict[str, Profile],
) -> None:
    assert plan_fleet(shape(profiles, seed=5)) == plan_fleet(shape(profiles, seed=5))
    one = [(n.bandwidth_mbps, n.latency_ms) for n in plan_fleet(shape(profiles, seed=5))]
    other = [(n.bandwidth_mbps, n.latency_ms) for n in plan_fleet(shape(profiles, seed=6))]
    assert one != other


def test_a_node_is_the_same_device_whatever_the_fleet_size(
    profiles: dict[str, Profile],
) -> None:
    small = plan_fleet(shape(profiles, count=20, sites=2, seed=3))
    large = plan_fleet(shape(profiles, count=2000, sites=2, seed=3))
    assert small == large[:20]


def test_heartbeats_are_spread_so_a_large_fleet_does_not_beat_in_step(
    profiles: dict[str, Profile],
) -> None:
    beats = {n.heartbeat_s for n in plan_fleet(shape(profiles, count=1000, sites=10))}
    assert len(beats) > 500


def test_named_probes_are_drawn_besides_the_broker(profiles: dict[str, Profile]) -> None:
    nodes = plan_fleet(shape(profiles, probes=("plc", "camera-hub")))
    assert all(set(n.latency_ms) == {"broker", "plc", "camera-hub"} for n in nodes)


@pytest.mark.parametrize(
    ("overrides", "setting", "says"),
    [
        ({"count": 0}, "count", "at least 1"),
        ({"count": -3}, "count", "at least 1"),
        ({"sites": 0}, "sites", "at least 1"),
        ({"count": 3, "sites": 4}, "sites", "cannot each hold"),
        ({"prefix": "Sim"}, "prefix", "not a valid prefix"),
        ({"prefix": "a/b"}, "prefix", "not a valid prefix"),
        ({"prefix": "x" * 55}, "prefix", "at most 63"),
        ({"profiles": {}}, "profiles", "no device profiles"),
        ({"weights": {"no-such-board": 1}}, "profile", "unknown profile 'no-such-board'"),
        ({"weights": {"teltonika-rutx11": 0}}, "profile", "must be >= 1"),
        ({"probes": ("broker",)}, "probe", "always simulated"),
        ({"probes": ("Cam Hub",)}, "probe", "not a valid probe"),
        ({"heartbeat_s": 0.5}, "heartbeat_s", ">= 1"),
    ],
)
def test_impossible_shapes_are_refused_naming_the_setting(
    profiles: dict[str, Profile], overrides: dict[str, object], setting: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        plan_fleet(shape(profiles, **overrides))
    assert caught.value.setting == setting
    assert says in str(caught.value)


def test_a_hand_made_plan_with_a_duplicate_node_id_is_refused(
    profiles: dict[str, Profile],
) -> None:
    nodes = plan_fleet(shape(profiles, count=3, sites=1))
    twin = NodePlan(**{**{f: getattr(nodes[2], f) for f in NodePlan.__slots__},
                       "node": nodes[0].node})  # fmt: skip
    with pytest.raises(SettingsError, match=r"duplicate node id 'sim-site-0-0'"):
        check_unique([*nodes[:2], twin])


@pytest.mark.parametrize(
    ("count", "chosen", "expected"),
    [
        (10, 0, []),
        (10, 1, [0]),
        (10, 5, [0, 2, 4, 6, 8]),
        (10, 10, list(range(10))),
        (10, 15, list(range(10))),
        (7, 3, [0, 2, 4]),
    ],
)
def test_faultable_nodes_are_spread_evenly_over_the_fleet(
    count: int, chosen: int, expected: list[int]
) -> None:
    assert spread_indices(count, chosen) == expected


def test_victims_are_distinct_seeded_and_independent_of_candidate_order() -> None:
    candidates = [f"n{i}" for i in range(50)]
    first = pick_nodes(candidates, 5, random.Random(1))
    shuffled = pick_nodes(list(reversed(candidates)), 5, random.Random(1))
    assert first == shuffled
    assert len(set(first)) == 5 and set(first) <= set(candidates)
    assert pick_nodes(candidates[:3], 5, random.Random(1)) == ["n0", "n1", "n2"]
