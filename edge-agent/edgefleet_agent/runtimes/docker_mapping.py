"""Pure translations between edgefleet's workload model and Docker's: no daemon, no I/O.

:mod:`edgefleet_agent.runtimes.docker` (the shell) calls these to build ``create`` arguments
from a :class:`WorkloadRef`, to read an :class:`Observed` back from ``docker inspect`` data, to
turn ``docker stats`` into :class:`WorkloadUsage`, and to name a failed pull. Keeping them
here lets the unit tests cover every state and error mapping without a daemon.

The spec travels with the container: labels carry the spec hash it was created from *and* the
full spec, because labels are immutable while limits are not. After a live
``update_resources`` the observed spec hash is recomputed from the stored spec plus the
container's live limits, so the agent sees the new hash (and does not re-apply the change)
even after it restarts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from edgefleet_protocol import Resources, WorkloadSpec, WorkloadUsage, spec_hash
from edgefleet_protocol.node_messages import Health, WorkloadState

from edgefleet_agent.core.runtime import (
    Observed,
    PermanentRuntimeError,
    RuntimeError_,
    TransientRuntimeError,
    WorkloadRef,
)

LABEL_MANAGED = "io.edgefleet.managed"
LABEL_NODE = "io.edgefleet.node"
LABEL_SITE = "io.edgefleet.site"
LABEL_WORKLOAD = "io.edgefleet.workload"
LABEL_APP = "io.edgefleet.app"
LABEL_SPEC_HASH = "io.edgefleet.spec-hash"
LABEL_SPEC = "io.edgefleet.spec"

CONTAINER_PREFIX = "edgefleet-"
NANO = 1_000_000_000
MIB = 1024 * 1024

# spec.restart -> Docker restart policy. Docker, not the agent, restarts exited containers
# (see the docker module docstring); "unless-stopped" also survives a daemon/gateway reboot.
RESTART_POLICIES: dict[str, dict[str, Any]] = {
    "always": {"Name": "unless-stopped"},
    "on-failure": {"Name": "on-failure", "MaximumRetryCount": 0},
    "never": {"Name": "no"},
}

DOCKER_HEALTH: dict[str, Health] = {
    "healthy": "healthy",
    "unhealthy": "unhealthy",
    "starting": "unknown",
}


def container_name(workload: str) -> str:
    return f"{CONTAINER_PREFIX}{workload}"


def owner_filters(node: str, workload: str | None = None) -> dict[str, list[str]]:
    """Label filters that select exactly what this node's agent owns (never anything else)."""
    labels = [f"{LABEL_MANAGED}=true", f"{LABEL_NODE}={node}"]
    if workload is not None:
        labels.append(f"{LABEL_WORKLOAD}={workload}")
    return {"label": labels}


def is_owned(labels: dict[str, str] | None, node: str) -> bool:
    labels = labels or {}
    return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_NODE) == node


def labels_for(ref: WorkloadRef, *, node: str, site: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_NODE: node,
        LABEL_SITE: site,
        LABEL_WORKLOAD: ref.name,
        LABEL_APP: ref.app,
        LABEL_SPEC_HASH: ref.spec_hash,
        LABEL_SPEC: ref.spec.model_dump_json(exclude_defaults=True),
    }


def nano_cpus(cpu: float) -> int:
    return round(cpu * NANO)


def memory_bytes(memory_mb: int) -> int:
    return memory_mb * MIB


def _port_bindings(spec: WorkloadSpec) -> dict[str, list[tuple[str, int | None]]]:
    # A list per container port, so one container port may be published on several host ports.
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for port in spec.ports:
        bindings.setdefault(f"{port.container}/{port.protocol}", []).append(
            (port.host_ip, port.host)
        )
    return bindings


def create_kwargs(ref: WorkloadRef, *, node: str, site: str) -> dict[str, Any]:
    """Arguments for ``client.containers.create`` that realise ``ref.spec``."""
    spec = ref.spec
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": container_name(ref.name),
        "labels": labels_for(ref, node=node, site=site),
        "environment": dict(spec.env),
        "nano_cpus": nano_cpus(spec.resources.cpu),
        # memswap == memory: the limit is the limit, no extra swap on a flash-backed gateway.
        "mem_limit": memory_bytes(spec.resources.memory_mb),
        "memswap_limit": memory_bytes(spec.resources.memory_mb),
        "restart_policy": dict(RESTART_POLICIES[spec.restart]),
        "detach": True,
    }
    if spec.command is not None:
        kwargs["command"] = list(spec.command)
    if spec.cwd is not None:
        kwargs["working_dir"] = spec.cwd
    if spec.ports and not spec.host_network:
        kwargs["ports"] = _port_bindings(spec)
    if spec.volumes:
        kwargs["volumes"] = {
            v.source: {"bind": v.target, "mode": "ro" if v.read_only else "rw"}
            for v in spec.volumes
        }
    if spec.devices:
        kwargs["devices"] = [
            f"{d.host}:{d.container or d.host}:{d.permissions}" for d in spec.devices
        ]
    if spec.host_network:
        kwargs["network_mode"] = "host"
    if spec.cap_add:
        kwargs["cap_add"] = list(spec.cap_add)
    if spec.privileged:
        kwargs["privileged"] = True
    if spec.user is not None:
        kwargs["user"] = spec.user
    if spec.health is not None and spec.health.kind != "docker":
        # The agent runs http/tcp/exec probes itself; an image's own HEALTHCHECK would be a
        # second opinion that can disagree, so it is switched off. kind "docker" keeps it.
        kwargs["healthcheck"] = {"test": ["NONE"]}
    return kwargs


def parse_docker_time(value: str | None) -> float:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as epoch seconds; 0.0 for unset."""
    if not value or value.startswith("0001-01-01"):
        return 0.0
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value.strip()
    )
    if match is None:
        return 0.0
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(base + zone).timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def _exit_message(code: int) -> str:
    if code > 128:
        return f"exited with code {code} (killed by signal {code - 128})"
    return f"exited with code {code}"


def state_from_inspect(state: dict[str, Any]) -> tuple[WorkloadState, str, int | None]:
    """Docker's ``State`` block as (our state, message, exit code).

    created -> starting; running -> running, or unhealthy when Docker's health says so;
    restarting -> starting (Docker is in its restart backoff; the message keeps the exit
    code); exited 0 -> stopped; exited N -> failed; dead/removing -> failed.
    """
    status = str(state.get("Status", ""))
    code = int(state.get("ExitCode") or 0)
    oom = " (out of memory)" if state.get("OOMKilled") else ""
    health = (state.get("Health") or {}).get("Status")
    if status == "created":
        return "starting", "created, not started yet", None
    if status == "running":
        if health == "unhealthy":
            return "unhealthy", "docker health check reports unhealthy", None
        return "running", "", None
    if status == "restarting":
        return "starting", f"{_exit_message(code)}{oom}; docker is restarting it", code
    if status == "paused":
        return "stopped", "paused", None
    if status == "exited":
        if code == 0:
            return "stopped", "exited with code 0", 0
        return "failed", f"{_exit_message(code)}{oom}", code
    if status == "removing":
        return "stopped", "being removed", code
    error = str(state.get("Error") or "")
    return (
        "failed",
        f"container is {status or 'in an unknown state'}" + (f": {error}" if error else ""),
        code,
    )


def health_from_inspect(state: dict[str, Any]) -> Health:
    """Docker's own health verdict; "unknown" when the container has no Docker healthcheck
    (the agent's http/tcp/exec probes then decide, and the agent knows the spec)."""
    health = (state.get("Health") or {}).get("Status")
    return DOCKER_HEALTH.get(str(health), "unknown")


def live_resources(host_config: dict[str, Any], fallback: Resources) -> Resources:
    """The limits the container has now (they change under ``docker update``)."""
    nano = int(host_config.get("NanoCpus") or 0)
    memory = int(host_config.get("Memory") or 0)
    return Resources(
        cpu=round(nano / NANO, 9) if nano > 0 else fallback.cpu,
        memory_mb=memory // MIB if memory > 0 else fallback.memory_mb,
    )


def stored_spec(labels: dict[str, str]) -> WorkloadSpec | None:
    """The spec a container was created from (its label), or None if missing/unreadable."""
    raw = labels.get(LABEL_SPEC)
    if not raw:
        return None
    try:
        return WorkloadSpec.model_validate(json.loads(raw))
    except ValueError:
        return None


def effective_spec_hash(labels: dict[str, str], host_config: dict[str, Any]) -> str:
    """The hash of the spec the container realises *now*: the stored spec with live limits.

    Falls back to the creation hash label when the spec label is missing or unreadable.
    """
    created_hash = labels.get(LABEL_SPEC_HASH, "")
    spec = stored_spec(labels)
    if spec is None:
        return created_hash
    live = live_resources(host_config, spec.resources)
    if live == spec.resources:
        return created_hash
    return spec_hash(spec.model_copy(update={"resources": live}))


def observed_from_inspect(attrs: dict[str, Any]) -> Observed:
    """``docker inspect`` of an owned container as an :class:`Observed`.

    ``restarts`` is Docker's RestartCount (restarts by its policy; a ``docker restart`` or
    :meth:`DockerRuntime.restart` does not count). ``since`` is StartedAt while running or
    restarting and FinishedAt once stopped/failed, i.e. since when the state holds.
    """
    labels: dict[str, str] = (attrs.get("Config") or {}).get("Labels") or {}
    state_block: dict[str, Any] = attrs.get("State") or {}
    state, message, exit_code = state_from_inspect(state_block)
    ended = state in ("stopped", "failed") and state_block.get("Status") != "restarting"
    since = parse_docker_time(
        state_block.get("FinishedAt") if ended else state_block.get("StartedAt")
    ) or parse_docker_time(attrs.get("Created"))
    return Observed(
        name=labels.get(LABEL_WORKLOAD, str(attrs.get("Name", "")).lstrip("/")),
        app=labels.get(LABEL_APP) or None,
        spec_hash=effective_spec_hash(labels, attrs.get("HostConfig") or {}),
        state=state,
        runtime_id=str(attrs.get("Id", "")),
        restarts=int(attrs.get("RestartCount") or 0),
        since=since,
        health=health_from_inspect(state_block),
        exit_code=exit_code,
        message=message,
    )


def usage_from_stats(stats: dict[str, Any]) -> WorkloadUsage:
    """One ``docker stats --no-stream`` sample as usage.

    cpu_pct follows ``docker stats``: percent of one core (200 = two cores busy), from the
    delta between this sample and the previous one Docker keeps in ``precpu_stats``.
    Memory excludes the page cache, as ``docker stats`` does (cgroup v1 ``cache``, v2
    ``inactive_file``).
    """
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_pct: float | None = None
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if pre.get("system_cpu_usage") and system_delta > 0 and online:
        cpu_pct = max(0.0, cpu_delta / system_delta * online * 100.0)

    memory = stats.get("memory_stats") or {}
    memory_mb: float | None = None
    memory_pct: float | None = None
    if "usage" in memory:
        details = memory.get("stats") or {}
        cache = details.get("total_inactive_file", details.get("inactive_file", 0))
        if not cache:
            cache = details.get("cache", 0)
        used = max(0, int(memory["usage"]) - int(cache))
        memory_mb = used / MIB
        limit = int(memory.get("limit") or 0)
        if limit > 0:
            memory_pct = used / limit * 100.0
    return WorkloadUsage(cpu_pct=cpu_pct, memory_mb=memory_mb, memory_pct=memory_pct)


_NOT_FOUND = re.compile(
    r"not found|manifest unknown|repository does not exist|pull access denied|"
    r"no such image|name unknown|unauthorized",
    re.IGNORECASE,
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|timeout|network is unreachable|"
    r"tls handshake|connection reset|\bEOF\b|temporary failure|server misbehaving",
    re.IGNORECASE,
)


def classify_pull_error(image: str, status_code: int | None, explanation: str) -> RuntimeError_:
    """Name a failed pull: retrying helps when the registry or daemon is unreachable, not
    when the image does not exist or the reference is invalid."""
    detail = explanation.strip() or "no detail from the daemon"
    if _UNREACHABLE.search(detail):
        return TransientRuntimeError(
            f"image {image} is not present and its registry is unreachable: {detail}"
        )
    if status_code == 404 or _NOT_FOUND.search(detail):
        return PermanentRuntimeError(f"image {image} not found in its registry: {detail}")
    if status_code is not None and 400 <= status_code < 500:
        return PermanentRuntimeError(f"image {image} cannot be pulled: {detail}")
    return TransientRuntimeError(f"pulling image {image} failed: {detail}")


_COMMAND_MISSING = re.compile(
    r"executable file not found|no such file or directory|permission denied|"
    r"is a directory|exec format error",
    re.IGNORECASE,
)


def classify_start_error(name: str, status_code: int | None, explanation: str) -> RuntimeError_:
    """Name a failed create/start: a bad command is permanent, a busy port is not."""
    detail = explanation.strip() or "no detail from the daemon"
    if _COMMAND_MISSING.search(detail):
        return PermanentRuntimeError(f"workload {name} cannot start: {detail}")
    if status_code is not None and 400 <= status_code < 500 and status_code != 409:
        return PermanentRuntimeError(f"workload {name} was refused by docker: {detail}")
    return TransientRuntimeError(f"workload {name} could not start: {detail}")
