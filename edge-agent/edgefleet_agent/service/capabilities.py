"""What this gateway offers, as the retained ``capabilities`` message.

:func:`gather_host_facts` reads the machine (psutil, platform); :func:`build_capabilities`
is pure and merges those facts with the device profile and the configured labels, sensors
and region. Measured hardware wins over the profile, except under the simulated runtime,
where the profile *is* the hardware being simulated (the fleet simulator runs many
"Raspberry Pis" on one server).
"""

from __future__ import annotations

import asyncio
import ipaddress
import platform
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import psutil
from edgefleet_protocol import Capabilities, NetworkInfo

from edgefleet_agent import __version__

if TYPE_CHECKING:
    from edgefleet_protocol.profiles import Profile

    from edgefleet_agent.core.runtime import Runtime

RuntimeName = Literal["docker", "process", "simulated"]


@dataclass(frozen=True, slots=True)
class HostFacts:
    arch: str
    os: str
    cpu_cores: float
    memory_mb: int
    disk_mb: int
    addresses: tuple[str, ...]


def _usable_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def gather_host_facts(state_dir: Path) -> HostFacts:
    """The machine as it is: cores, memory, disk of the state dir's filesystem, addresses."""
    addresses = sorted(
        {
            a.address.split("%", 1)[0]
            for nic in psutil.net_if_addrs().values()
            for a in nic
            if a.family in (socket.AF_INET, socket.AF_INET6) and _usable_address(a.address)
        }
    )
    try:
        disk_mb = psutil.disk_usage(str(state_dir)).total // 2**20
    except OSError:
        disk_mb = 0
    return HostFacts(
        arch=platform.machine() or "unknown",
        os=f"{platform.system().lower()} {platform.release()}"[:64],
        cpu_cores=float(psutil.cpu_count() or 1),
        memory_mb=max(1, psutil.virtual_memory().total // 2**20),
        disk_mb=disk_mb,
        addresses=tuple(addresses),
    )


def load_device_profile(path: Path) -> Profile:
    """The profile file named by the settings; raises ``ProfileError`` naming file and field.
    Imported here, not at the top: the profile module pulls in a YAML parser."""
    from edgefleet_protocol.profiles import load_profile

    return load_profile(path)


def build_capabilities(
    *,
    node: str,
    site: str,
    facts: HostFacts,
    profile: Profile | None,
    runtimes: Sequence[str],
    labels: Mapping[str, str],
    sensors: Sequence[str],
    region: str | None,
    addresses: Sequence[str] = (),
    simulated_hardware: bool = False,
    sealing_key: str | None = None,
) -> Capabilities:
    """The capabilities message. Configured labels override the profile's on equal keys;
    configured addresses replace detected ones."""
    arch, cores, memory, disk = facts.arch, facts.cpu_cores, facts.memory_mb, facts.disk_mb
    if simulated_hardware and profile is not None:
        arch = profile.arch
        cores = float(profile.cpu.threads or profile.cpu.cores)
        memory, disk = profile.memory_mb, profile.storage_mb
    network = NetworkInfo()
    if profile is not None:
        network = NetworkInfo(link=profile.link.type, bandwidth_mbps=profile.link.bandwidth_mbps)
    merged_sensors = list(dict.fromkeys([*(profile.sensors if profile else []), *sensors]))
    return Capabilities(
        sealing_key=sealing_key,
        node=node,
        site=site,
        profile=profile.id if profile else None,
        arch=arch,
        os=facts.os,
        cpu_cores=cores,
        memory_mb=memory,
        disk_mb=disk,
        runtimes=[cast(RuntimeName, r) for r in runtimes],
        labels={**(profile.labels if profile else {}), **labels},
        sensors=merged_sensors,
        accelerators=list(profile.accelerators) if profile else [],
        region=region,
        network=network,
        addresses=list(addresses or facts.addresses),
        agent_version=__version__,
    )


async def answering_runtimes(runtimes: Mapping[str, Runtime]) -> list[str]:
    """The configured runtimes that answer right now (5 s each at most)."""
    return [name for name, runtime in runtimes.items() if await _answers(runtime)]


async def _answers(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(5.0):
            return await runtime.available()
    except Exception:
        return False
