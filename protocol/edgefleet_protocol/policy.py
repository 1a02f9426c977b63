"""Compliance policies: the file format and the pure rules, shared by both enforcers.

A policy file (YAML or JSON) is evaluated twice: by the orchestrator at admission
(``--policy``: a deploy that breaks any rule is refused, every broken rule listed) and by
each agent from a file of its own (setting ``policy_file``, which the orchestrator cannot
change: a desired document that breaks a rule is refused as a whole with an event, and the
gateway keeps running what it ran). The gateway owner has the last word.

Rules (every block optional; an empty policy allows everything):

* ``images`` — ``allow``: registry/repository entries (``docker.io/library/busybox``, or a
  prefix ending in ``/*``: ``registry.example.net/plant/*``); ``require_digest``: images
  must be pinned as ``@sha256:...``;
* ``commands`` — ``allow``: program paths (``/opt/bridge/bin/modbus-bridge``) or prefixes
  ending in ``/*``; process workloads only; ``cwd_under``: working directories must lie under
  one of these directories;
* ``allow`` — what is forbidden unless listed: ``privileged``, ``host_network`` (booleans),
  ``host_paths`` (directories a volume may mount from), ``devices`` (device paths),
  ``capabilities`` (names such as ``NET_ADMIN``), ``users`` (run-as users; ``*`` any);
* ``resources`` — ``required`` (the manifest must set them; orchestrator only), ``max_cpu``,
  ``max_memory_mb``;
* ``residency`` — ``[{data_class, regions}]``: workloads of that data class only in those
  regions (orchestrator: the app's ``placement.regions`` must be a non-empty subset; agent:
  its own region must be listed);
* ``required_labels`` — label keys every app manifest must carry (orchestrator only: agents
  do not see app labels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from edgefleet_protocol.base import FORBID_UNKNOWN, StrictSpec
from edgefleet_protocol.codec import from_validation_error
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.workload import WorkloadSpec, canonical_json
from edgefleet_protocol.workload_options import AbsolutePath, Capability, DataClass

MAX_POLICY_BYTES = 256 * 1024


class ImageRules(StrictSpec):
    allow: list[str] = Field(default_factory=list, max_length=1024)
    require_digest: bool = False


class CommandRules(StrictSpec):
    allow: list[str] = Field(default_factory=list, max_length=1024)
    cwd_under: list[AbsolutePath] = Field(default_factory=list, max_length=256)


class Allowances(StrictSpec):
    privileged: bool = False
    host_network: bool = False
    host_paths: list[AbsolutePath] = Field(default_factory=list, max_length=256)
    devices: list[AbsolutePath] = Field(default_factory=list, max_length=256)
    capabilities: list[Capability] = Field(default_factory=list, max_length=64)
    users: list[str] = Field(default_factory=lambda: ["*"], max_length=256)


class ResourceRules(StrictSpec):
    required: bool = False
    max_cpu: float | None = Field(default=None, gt=0)
    max_memory_mb: int | None = Field(default=None, gt=0)


class Residency(StrictSpec):
    data_class: DataClass
    regions: list[str] = Field(min_length=1, max_length=256)


class CompliancePolicy(StrictSpec):
    v: Literal[1] = 1
    images: ImageRules = Field(default_factory=ImageRules)
    commands: CommandRules = Field(default_factory=CommandRules)
    allow: Allowances = Field(default_factory=Allowances)
    resources: ResourceRules = Field(default_factory=ResourceRules)
    residency: list[Residency] = Field(default_factory=list, max_length=256)
    required_labels: list[str] = Field(default_factory=list, max_length=256)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``rule`` is its dotted name in the policy file."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def load_policy(text: str | bytes, *, source: str = "policy") -> CompliancePolicy:
    """A policy from YAML/JSON text; ``ProtocolError`` naming the file and the bad field."""
    if len(text) > MAX_POLICY_BYTES:
        raise ProtocolError(source, f"is larger than {MAX_POLICY_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(source, f"is not valid YAML/JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(source, "must hold a mapping of rules")
    try:
        return CompliancePolicy.model_validate(data, context={FORBID_UNKNOWN: True})
    except ValidationError as exc:
        err = from_validation_error(exc)
        raise ProtocolError(f"{source}: {err.field}", err.reason) from None


def policy_hash(policy: CompliancePolicy) -> str:
    """``sha256:`` + 16 hex digits of the policy's canonical JSON (for compliance reports)."""
    data = policy.model_dump(mode="json")
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()[:16]


def image_reference(image: str) -> tuple[str, str | None]:
    """``busybox`` -> (``docker.io/library/busybox``, None); the digest when pinned."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry port
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    parts = name.split("/")
    if len(parts) == 1:
        parts = ["docker.io", "library", *parts]
    elif "." not in parts[0] and ":" not in parts[0] and parts[0] != "localhost":
        parts = ["docker.io", *parts]
    return "/".join(parts), (digest or None)


def _listed(value: str, entries: Iterable[str]) -> bool:
    for entry in entries:
        if entry == "*" or value == entry:
            return True
        if entry.endswith("/*") and value.startswith(entry[:-1]):
            return True
    return False


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def spec_violations(
    spec: WorkloadSpec, policy: CompliancePolicy, *, region: str | None = None
) -> list[Violation]:
    """Every rule ``spec`` breaks. ``region`` is the node's (agent side); ``None`` skips
    residency (the orchestrator checks the app's placement instead)."""
    found: list[Violation] = []
    images, allow = policy.images, policy.allow
    if spec.runtime == "docker" and spec.image:
        repo, digest = image_reference(spec.image)
        if images.allow and not _listed(repo, images.allow):
            found.append(Violation("images.allow", f"image {repo} is not in the allow-list"))
        if images.require_digest and (digest is None or not digest.startswith("sha256:")):
            found.append(Violation("images.require_digest", f"image {spec.image} is not pinned"
                                   " by digest (@sha256:...)"))  # fmt: skip
    if spec.runtime == "process" and spec.command:
        program = spec.command[0]
        if policy.commands.allow and not _listed(program, policy.commands.allow):
            found.append(Violation("commands.allow", f"command {program} is not allowed"))
        if policy.commands.cwd_under and not _under(spec.cwd or "", policy.commands.cwd_under):
            found.append(Violation("commands.cwd_under", f"working directory {spec.cwd or '(none)'}"
                                   " is not under an allowed directory"))  # fmt: skip
    if spec.privileged and not allow.privileged:
        found.append(Violation("allow.privileged", "privileged containers are forbidden"))
    if spec.host_network and not allow.host_network:
        found.append(Violation("allow.host_network", "host network is forbidden"))
    for volume in spec.volumes:
        if volume.host_path and not _under(volume.source, allow.host_paths):
            found.append(Violation("allow.host_paths", f"host path {volume.source} is not"
                                   " allowed"))  # fmt: skip
    for device in spec.devices:
        if device.host not in allow.devices:
            found.append(Violation("allow.devices", f"device {device.host} is not allowed"))
    for cap in spec.cap_add:
        if cap not in allow.capabilities:
            found.append(Violation("allow.capabilities", f"capability {cap} is not allowed"))
    if spec.user is not None and not _listed(spec.user, allow.users):
        found.append(Violation("allow.users", f"run-as user {spec.user} is not allowed"))
    limits = policy.resources
    if limits.max_cpu is not None and spec.resources.cpu > limits.max_cpu:
        found.append(Violation("resources.max_cpu", f"cpu {spec.resources.cpu:g} is above"
                               f" {limits.max_cpu:g}"))  # fmt: skip
    if limits.max_memory_mb is not None and spec.resources.memory_mb > limits.max_memory_mb:
        found.append(Violation("resources.max_memory_mb", f"memory_mb {spec.resources.memory_mb}"
                               f" is above {limits.max_memory_mb}"))  # fmt: skip
    if region is not None:
        for rule in policy.residency:
            if spec.data_class == rule.data_class and region not in rule.regions:
                where = region or "a node without a region"
                message = f"data class {rule.data_class} may run only in"
                found.append(Violation("residency", f"{message} {', '.join(rule.regions)}, not"
                                       f" in {where}"))  # fmt: skip
    return found


def manifest_violations(
    manifest: Any, policy: CompliancePolicy, *, given: dict[str, Any] | None = None
) -> list[Violation]:
    """Every rule an app manifest breaks (the orchestrator's admission). ``manifest`` is an
    :class:`~edgefleet_protocol.manifest.AppManifest`; ``given`` the raw manifest object,
    to tell resources the author set from defaults."""
    spec: WorkloadSpec = manifest.workload
    found = spec_violations(spec, policy)
    raw_workload = (given or {}).get("workload", {})
    if policy.resources.required and "resources" not in raw_workload:
        found.append(Violation("resources.required", "the workload must set resources"))
    for key in policy.required_labels:
        if key not in manifest.labels:
            found.append(Violation("required_labels", f"label {key} is required"))
    for rule in policy.residency:
        if spec.data_class != rule.data_class:
            continue
        regions = list(manifest.placement.regions)
        outside = sorted(set(regions) - set(rule.regions))
        if not regions or outside:
            found.append(Violation("residency", f"data class {rule.data_class} may run only in"
                f" {', '.join(rule.regions)}: set placement.regions within them"
                + (f" ({', '.join(outside)} is not)" if outside else "")))  # fmt: skip
    return found


def document_violations(
    workloads: Iterable[tuple[str, WorkloadSpec]], policy: CompliancePolicy, *, region: str | None
) -> list[str]:
    """The agent's view: every broken rule of every workload, ``"name: rule: message"``."""
    return [f"{name}: {v}" for name, spec in workloads for v in spec_violations(spec, policy,
            region=region if region is not None else "")]  # fmt: skip
