"""The workload spec: what one replica runs, identical on both sides of the wire.

The orchestrator puts a spec and its :func:`spec_hash` in each node's desired document; the
agent recomputes the hash and compares it with what it runs, so a workload whose hash is
unchanged is never touched. The hash is over canonical JSON of the spec *without default
values*, so adding a new optional field with a default in a later version does not change
the hash of existing specs (and so restarts nothing on upgrade).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.workload_options import (
    Capability,
    DataClass,
    Device,
    RunAsUser,
    SecretRef,
    Volume,
)

RuntimeName = Literal["docker", "process", "simulated"]


MAX_CPU = 1024
MAX_MEMORY_MB = 4_194_304


class AutoResources(StrictSpec):
    """Bounds within which the orchestrator sizes each replica's limits from its observed
    usage (vertical scaling). A dimension is sized only when both of its bounds are given.

    Orchestrator-only: the spec an agent receives carries the sized ``cpu``/``memory_mb``
    and no ``auto`` (agents apply limits; they do not choose them).
    """

    min_cpu: float | None = Field(default=None, gt=0, le=MAX_CPU)
    max_cpu: float | None = Field(default=None, gt=0, le=MAX_CPU)
    min_memory_mb: int | None = Field(default=None, gt=0, le=MAX_MEMORY_MB)
    max_memory_mb: int | None = Field(default=None, gt=0, le=MAX_MEMORY_MB)

    @model_validator(mode="after")
    def _bounds_make_sense(self) -> AutoResources:
        pairs = (("min_cpu", "max_cpu"), ("min_memory_mb", "max_memory_mb"))
        given = 0
        for low_name, high_name in pairs:
            low, high = getattr(self, low_name), getattr(self, high_name)
            if (low is None) != (high is None):
                missing = high_name if high is None else low_name
                raise ValueError(f"{missing} is required with {low_name if low else high_name}")
            if low is not None and high is not None:
                given += 1
                if low > high:
                    raise ValueError(f"{low_name} {low:g} is above {high_name} {high:g}")
        if not given:
            raise ValueError(
                "needs min_cpu/max_cpu, min_memory_mb/max_memory_mb or both (leave auto out "
                "for fixed limits)"
            )
        return self

    @property
    def sizes_cpu(self) -> bool:
        return self.min_cpu is not None and self.max_cpu is not None

    @property
    def sizes_memory(self) -> bool:
        return self.min_memory_mb is not None and self.max_memory_mb is not None


class Resources(StrictSpec):
    """What a replica reserves on its node (placement) and is limited to (runtime).

    With ``auto`` the orchestrator adjusts ``cpu``/``memory_mb`` per replica within its
    bounds; the values given here are then where every new replica starts.
    """

    cpu: float = Field(default=0.1, gt=0, le=MAX_CPU, description="CPU cores, e.g. 0.5")
    memory_mb: int = Field(default=64, gt=0, le=MAX_MEMORY_MB)
    auto: AutoResources | None = None

    @model_validator(mode="after")
    def _start_within_bounds(self) -> Resources:
        auto = self.auto
        if auto is None:
            return self
        low_cpu, high_cpu = auto.min_cpu, auto.max_cpu
        if low_cpu is not None and high_cpu is not None and not low_cpu <= self.cpu <= high_cpu:
            raise ValueError(f"cpu {self.cpu:g} is outside auto bounds {low_cpu:g}..{high_cpu:g}")
        low_mb, high_mb = auto.min_memory_mb, auto.max_memory_mb
        if low_mb is not None and high_mb is not None and not low_mb <= self.memory_mb <= high_mb:
            raise ValueError(
                f"memory_mb {self.memory_mb} is outside auto bounds {low_mb}..{high_mb}"
            )
        return self

    def fixed(self) -> Resources:
        """These limits without ``auto``: what an agent is given."""
        return self if self.auto is None else Resources(cpu=self.cpu, memory_mb=self.memory_mb)


class Port(StrictSpec):
    container: int = Field(ge=1, le=65535)
    host: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "0.0.0.0"


class HealthCheck(StrictSpec):
    """An HTTP, TCP or exec probe run by the agent; ``docker`` defers to the image's own."""

    kind: Literal["http", "tcp", "exec", "docker"]
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str = "/"
    host: str = "127.0.0.1"
    command: list[str] | None = None
    interval_s: float = Field(default=10.0, gt=0, le=3600)
    timeout_s: float = Field(default=2.0, gt=0, le=600)
    failure_threshold: int = Field(default=3, ge=1, le=100)
    start_period_s: float = Field(default=0.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> HealthCheck:
        if self.kind in ("http", "tcp") and self.port is None:
            raise ValueError(f"a {self.kind} health check needs a port")
        if self.kind == "exec" and not self.command:
            raise ValueError("an exec health check needs a command")
        return self


class ServiceBinding(StrictSpec):
    """The service a replica serves, as its agent needs it: the name, the named ports it
    listens on (reported with the node's address) and the MQTT shared-subscription group.

    Orchestrator-filled: a manifest declares ``service`` at the app level and the
    orchestrator copies it here, so the desired document tells the agent what to report
    and which environment to give the replica."""

    name: Identifier
    ports: dict[Identifier, int] = Field(default_factory=dict)
    mqtt_group: Identifier | None = None

    @field_validator("ports")
    @classmethod
    def _ports_in_range(cls, ports: dict[str, int]) -> dict[str, int]:
        for name, port in ports.items():
            if not 1 <= port <= 65535:
                raise ValueError(f"port {name}: {port} is outside 1..65535")
        return ports


class WorkloadSpec(StrictSpec):
    """One replica's runtime spec.

    ``runtime: docker`` needs ``image`` (``command`` overrides the image's command);
    ``runtime: process`` needs ``command`` (argv, no shell); ``runtime: simulated`` needs
    neither and is for the fleet simulator and tests. ``service`` and ``uses`` are copied
    from the manifest's app-level ``service`` and ``uses`` by the orchestrator; both default
    to nothing and so leave existing spec hashes as they were.
    """

    runtime: RuntimeName
    image: str | None = Field(default=None, min_length=1, max_length=512)
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    ports: list[Port] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    health: HealthCheck | None = None
    restart: Literal["always", "on-failure", "never"] = "always"
    stop_timeout_s: float = Field(default=10.0, ge=0, le=600)
    service: ServiceBinding | None = None
    uses: list[Identifier] = Field(default_factory=list, max_length=64)
    # Options real gateways need (docs/protocol.md, "Workload options"); policies govern them.
    volumes: list[Volume] = Field(default_factory=list, max_length=64)
    devices: list[Device] = Field(default_factory=list, max_length=64)
    host_network: bool = False
    cap_add: list[Capability] = Field(default_factory=list, max_length=64)
    privileged: bool = False
    user: RunAsUser | None = None
    data_class: DataClass | None = None
    secrets: list[SecretRef] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _fields_for_runtime(self) -> WorkloadSpec:
        if self.runtime == "docker" and not self.image:
            raise ValueError("runtime docker needs an image")
        if self.runtime == "process" and not self.command:
            raise ValueError("runtime process needs a command (argv list)")
        if self.command is not None and not self.command:
            raise ValueError("command must not be an empty list")
        if self.runtime != "docker":
            docker_only = [
                name
                for name in ("volumes", "devices", "host_network", "cap_add", "privileged")
                if getattr(self, name)
            ]
            if docker_only:
                raise ValueError(f"{', '.join(docker_only)}: only for runtime docker")
        return self


def host_ports(spec: WorkloadSpec) -> frozenset[int]:
    """The TCP ports a replica of ``spec`` holds on its node: published Docker host ports
    and, for a process, the ports it serves its service on (placement keeps two replicas
    that want one port off the same node)."""
    held = {p.host for p in spec.ports if p.host is not None and p.protocol == "tcp"}
    if spec.service is not None and spec.runtime != "docker":
        held.update(spec.service.ports.values())
    return frozenset(held)


def canonical_json(data: object) -> bytes:
    """JSON with sorted keys and no whitespace: the same bytes on every machine."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hashed(spec: WorkloadSpec) -> dict[str, object]:
    """The spec as hashed: without defaults, and without sealed secret boxes (they are
    per node; the hash names which secrets, not their ciphertext)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for secret in data.get("secrets", []):
        secret.pop("sealed", None)
    return data


def spec_hash(spec: WorkloadSpec) -> str:
    """Stable hash of a spec: ``sha256:`` plus the first 16 hex digits."""
    data = _hashed(spec)
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()[:16]


def identity_hash(spec: WorkloadSpec) -> str:
    """Hash of everything but the resources: equal identity hashes with different spec
    hashes mean the change can be applied live (new limits) without a restart."""
    data = _hashed(spec)
    data.pop("resources", None)
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()[:16]
