"""Which runtimes an agent runs, from ``--runtime``: the one place that constructs them.

Runtime modules are imported only when chosen: the Docker SDK (and the HTTP stack under
it) costs several megabytes of RSS that a process-only or simulated gateway should not
pay. ``auto`` means the process runtime always, plus Docker when a daemon socket exists
(``DOCKER_HOST`` set, or ``/var/run/docker.sock`` present); whether the daemon actually
answers is checked at run time and shown in the capabilities.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.security.secrets import SecretEnv
from edgefleet_agent.settings import AS_AGENT, AgentSettings

SIMULATED_TABLE = "simulated-workloads.json"
DOCKER_SOCKET = Path("/var/run/docker.sock")
SUPERVISE_INTERVAL_S = 1.0
"""How often the process runtime looks for exited processes (its restart policy)."""


def docker_socket_present() -> bool:
    return bool(os.environ.get("DOCKER_HOST")) or DOCKER_SOCKET.exists()


def build_runtimes(
    settings: AgentSettings, *, secrets: SecretEnv | None = None
) -> dict[str, Runtime]:
    """``secrets`` opens a spec's sealed secrets at launch (see :mod:`..security.secrets`)."""
    match settings.runtime:
        case "simulated":
            return {"simulated": simulated_runtime(settings)}
        case "process":
            return {"process": process_runtime(settings, secrets)}
        case "docker":
            return {"docker": docker_runtime(settings, secrets)}
        case _:
            runtimes = {"process": process_runtime(settings, secrets)}
            if docker_socket_present():
                runtimes["docker"] = docker_runtime(settings, secrets)
            return runtimes


def simulated_runtime(settings: AgentSettings) -> Runtime:
    from edgefleet_agent.runtimes.simulated import SimulatedRuntime

    return SimulatedRuntime(
        seed=settings.sim_seed,
        start_delay_s=settings.sim_start_delay_s,
        failure_rate=settings.sim_failure_rate,
        state_file=settings.state_dir / SIMULATED_TABLE,
    )


def docker_runtime(settings: AgentSettings, secrets: SecretEnv | None = None) -> Runtime:
    from edgefleet_agent.runtimes.docker import DockerRuntime

    return DockerRuntime(settings.node, settings.site, secrets=secrets)


def process_runtime(settings: AgentSettings, secrets: SecretEnv | None = None) -> Runtime:
    from edgefleet_agent.runtimes.process import ProcessRuntime

    # The agent drives supervision from its own named task (see Agent.run), so the runtime
    # does not start a background task of its own.
    # Only root can switch users; an unprivileged agent's workloads run as the agent.
    user = settings.workload_user if os.geteuid() == 0 else AS_AGENT
    runtime = ProcessRuntime(
        settings.state_dir,
        settings.node,
        supervise_interval_s=SUPERVISE_INTERVAL_S,
        auto_supervise=False,
        secrets=secrets,
        default_user=None if user == AS_AGENT else user,
    )
    if runtime.default_user is not None:
        open_state_to_workloads(settings.state_dir)
    return runtime


def open_state_to_workloads(state_dir: Path) -> None:
    """What an unprivileged workload may reach of the agent's state: only its metrics file.

    The state dir becomes traverse-only (0711: no listing; the store, registry and logs stay
    owner-only), and ``metrics/`` write-and-traverse for everyone with the sticky bit
    (1733: a workload creates its own ``<name>.json`` and cannot list, replace or delete
    another's)."""
    state_dir.chmod(0o711)
    (state_dir / "logs").chmod(0o700)
    metrics = state_dir / "metrics"
    metrics.mkdir(exist_ok=True)
    metrics.chmod(0o1733)
