"""Capabilities: measured hardware, the device profile, and configured labels merged."""

from __future__ import annotations

from pathlib import Path

from edgefleet_agent.service.capabilities import HostFacts, build_capabilities, gather_host_facts
from edgefleet_protocol.profiles import load_profile

REPO = Path(__file__).resolve().parents[2]
PI4 = load_profile(REPO / "device-profiles" / "raspberry-pi-4b-4gb.yaml")
FACTS = HostFacts(
    arch="x86_64",
    os="linux 6.1",
    cpu_cores=2,
    memory_mb=8000,
    disk_mb=50000,
    addresses=("10.0.0.7",),
)


def test_measured_hardware_wins_and_the_profile_adds_what_it_knows() -> None:
    caps = build_capabilities(
        node="n1",
        site="s1",
        facts=FACTS,
        profile=PI4,
        runtimes=["process"],
        labels={"zone": "a", "board": "custom"},
        sensors=["temp"],
        region="eu",
    )
    assert (caps.arch, caps.cpu_cores, caps.memory_mb) == ("x86_64", 2, 8000)
    assert caps.profile == "raspberry-pi-4b-4gb"
    assert caps.labels["board"] == "custom"  # configured labels override the profile's
    assert caps.labels["gpio"] == "40-pin"
    assert (caps.network.link, caps.network.bandwidth_mbps) == ("ethernet", 1000)
    assert caps.sensors == ["temp"]
    assert (caps.region, caps.addresses, caps.runtimes) == ("eu", ["10.0.0.7"], ["process"])


def test_under_the_simulated_runtime_the_profile_is_the_hardware() -> None:
    caps = build_capabilities(
        node="n1",
        site="s1",
        facts=FACTS,
        profile=PI4,
        runtimes=["simulated"],
        labels={},
        sensors=[],
        region=None,
        simulated_hardware=True,
    )
    assert (caps.arch, caps.cpu_cores, caps.memory_mb, caps.disk_mb) == ("aarch64", 4, 4096, 32768)


def test_configured_addresses_replace_detected_ones() -> None:
    caps = build_capabilities(
        node="n1",
        site="s1",
        facts=FACTS,
        profile=None,
        runtimes=["process"],
        labels={},
        sensors=[],
        region=None,
        addresses=["192.0.2.1"],
    )
    assert caps.addresses == ["192.0.2.1"]
    assert caps.profile is None


def test_host_facts_come_from_this_machine(tmp_path: Path) -> None:
    facts = gather_host_facts(tmp_path)
    assert facts.cpu_cores >= 1
    assert facts.memory_mb > 0
    assert facts.disk_mb > 0
    assert all(not a.startswith(("127.", "fe80")) and a != "::1" for a in facts.addresses)
