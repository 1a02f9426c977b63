"""A simulated gateway's device model: hardware and link from its profile, steady readings."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgefleet_agent.core.telemetry import Deadbands, SentState, decide
from edgefleet_agent.service.capabilities import build_capabilities
from edgefleet_agent.simulate.device import (
    SIMULATED_OS,
    device_profile,
    device_sample,
    host_facts,
)
from edgefleet_agent.simulate.plan import FleetShape, NodePlan, plan_fleet
from edgefleet_protocol import WorkloadUsage
from edgefleet_protocol.profiles import Profile, load_profiles

PROFILES_DIR = Path(__file__).resolve().parents[2] / "device-profiles"


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles(PROFILES_DIR)


def node_of(profiles: dict[str, Profile], profile_id: str) -> NodePlan:
    weights = {profile_id: 1}
    return plan_fleet(FleetShape(count=1, sites=1, profiles=profiles, weights=weights, seed=4))[0]


@pytest.mark.parametrize("profile_id", ["raspberry-pi-4b-4gb", "teltonika-rutx11"])
def test_capabilities_carry_the_profile_hardware_and_the_drawn_link(
    profiles: dict[str, Profile], profile_id: str
) -> None:
    plan = node_of(profiles, profile_id)
    profile = device_profile(profiles[profile_id], plan)
    caps = build_capabilities(
        node=plan.node,
        site=plan.site,
        facts=host_facts(profile, plan)(Path("/unused")),
        profile=profile,
        runtimes=["simulated"],
        labels={},
        sensors=[],
        region=None,
        simulated_hardware=True,
    )
    published = profiles[profile_id]
    assert caps.profile == profile_id
    assert caps.arch == published.arch
    assert caps.memory_mb == published.memory_mb
    assert caps.cpu_cores == float(published.cpu.threads or published.cpu.cores)
    assert caps.network.link == published.link.type
    assert caps.network.bandwidth_mbps == plan.bandwidth_mbps
    assert caps.network.bandwidth_mbps != published.link.bandwidth_mbps
    assert caps.addresses == [plan.address]
    assert caps.os == SIMULATED_OS
    assert caps.labels == published.labels


def test_an_idle_device_reads_its_drawn_load_and_latencies(
    profiles: dict[str, Profile],
) -> None:
    plan = node_of(profiles, "raspberry-pi-4b-4gb")
    sample = device_sample(plan, profiles[plan.profile], {})
    assert sample.cpu_pct == plan.idle_cpu_pct
    assert sample.memory_pct == plan.idle_memory_pct
    assert sample.disk_pct == plan.disk_pct
    assert sample.latency_ms == plan.latency_ms
    assert sample.workloads == {}


def test_workloads_add_their_usage_to_the_device_load(profiles: dict[str, Profile]) -> None:
    plan = node_of(profiles, "raspberry-pi-4b-4gb")  # 4 cores, 4096 MB
    usage = {"w1": WorkloadUsage(cpu_pct=40.0, memory_mb=409.6)}
    sample = device_sample(plan, profiles[plan.profile], usage)
    assert sample.cpu_pct == pytest.approx(plan.idle_cpu_pct + 10.0, abs=0.05)
    assert sample.memory_pct == pytest.approx(plan.idle_memory_pct + 10.0, abs=0.05)
    assert sample.workloads == usage


def test_load_never_reads_above_one_hundred_percent(profiles: dict[str, Profile]) -> None:
    plan = node_of(profiles, "raspberry-pi-zero-2w")
    usage = {f"w{i}": WorkloadUsage(cpu_pct=400.0, memory_mb=4096.0) for i in range(3)}
    sample = device_sample(plan, profiles[plan.profile], usage)
    assert sample.cpu_pct == 100.0 and sample.memory_pct == 100.0


def test_a_steady_device_sends_nothing_between_heartbeats(profiles: dict[str, Profile]) -> None:
    plan = node_of(profiles, "siemens-iot2050-advanced")
    bands, state = Deadbands(), SentState()
    sent = []
    for tick in range(6):  # one minute of 10 s samples, heartbeat 60 s
        sample = device_sample(plan, profiles[plan.profile], {})
        decision, state = decide(sample, state, now=tick * 10.0, heartbeat_s=60.0, bands=bands)
        sent.append(decision is not None)
    assert sent == [True, False, False, False, False, False]
