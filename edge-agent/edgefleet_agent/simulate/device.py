"""A simulated gateway's hardware and readings, for agents run by the fleet simulator.

The real agent samples the host it runs on (psutil, TCP probes); thousands of simulated
gateways share one host, so each gets this model of its own device instead, built from its
:class:`~edgefleet_agent.simulate.plan.NodePlan` and device profile:

* :func:`device_profile` is the profile with this node's drawn link bandwidth, so the
  retained ``capabilities`` carry ``network.bandwidth_mbps`` of this very link;
* :func:`host_facts` stands in for :func:`~edgefleet_agent.service.capabilities.gather_host_facts`
  (the profile's hardware, the node's simulated address) and costs nothing per call;
* :class:`DeviceSampler` is the agent's telemetry
  :class:`~edgefleet_agent.service.telemetry_sender.Sampler`:
  steady idle load plus what the simulated workloads use, and the drawn round trips
  (``latency_ms.broker``, ``latency_ms.camera-hub``...). Steady values keep
  report-by-exception quiet: an idle simulated gateway sends only its heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from edgefleet_protocol import WorkloadUsage
from edgefleet_protocol.profiles import Profile

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.core.telemetry import Sample
from edgefleet_agent.service.capabilities import HostFacts
from edgefleet_agent.simulate.plan import NodePlan

SIMULATED_OS = "linux (edgefleet simulated)"


def device_profile(profile: Profile, plan: NodePlan) -> Profile:
    """The profile as this node's device: its link carries the drawn bandwidth."""
    link = profile.link.model_copy(update={"bandwidth_mbps": plan.bandwidth_mbps})
    return profile.model_copy(update={"link": link})


def host_facts(profile: Profile, plan: NodePlan) -> Callable[[Path], HostFacts]:
    facts = HostFacts(
        arch=profile.arch,
        os=SIMULATED_OS,
        cpu_cores=float(profile.cpu.threads or profile.cpu.cores),
        memory_mb=profile.memory_mb,
        disk_mb=profile.storage_mb,
        addresses=(plan.address,),
    )
    return lambda _state_dir: facts


def device_sample(plan: NodePlan, profile: Profile, usage: dict[str, WorkloadUsage]) -> Sample:
    """Pure: the node's reading given what its workloads use right now."""
    cores = float(profile.cpu.threads or profile.cpu.cores)
    workload_cpu = sum(u.cpu_pct or 0.0 for u in usage.values()) / cores
    workload_memory = sum(u.memory_mb or 0.0 for u in usage.values())
    cpu = min(100.0, plan.idle_cpu_pct + workload_cpu)
    memory = min(100.0, plan.idle_memory_pct + 100.0 * workload_memory / profile.memory_mb)
    return Sample(
        cpu_pct=round(cpu, 1),
        memory_pct=round(memory, 1),
        disk_pct=plan.disk_pct,
        load1=round(cpu / 100.0 * cores, 2),
        latency_ms=dict(plan.latency_ms),
        workloads=usage,
    )


class DeviceSampler:
    """The simulated device as the agent's telemetry source."""

    def __init__(self, plan: NodePlan, profile: Profile) -> None:
        self.plan = plan
        self.profile = profile

    async def sample(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> Sample:
        usage: dict[str, WorkloadUsage] = {}
        for runtime in runtimes:
            usage.update(await runtime.usage())
        return device_sample(self.plan, self.profile, usage)
