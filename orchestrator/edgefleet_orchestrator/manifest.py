"""Application manifests: what an operator asks the fleet to run, validated at the edge.

A manifest names an app, the workload spec each replica runs, how many replicas (or one per
matching node, ``mode: daemon``), where they may run (``placement``) and what happens when a
node disappears (``disconnect``). The orchestrator validates manifests with unknown fields
refused, so a typo such as ``max_per_nod`` is an error naming its path instead of a silently
ignored key. The placement pipeline (:mod:`edgefleet_orchestrator.placement`) reads the
validated, frozen :class:`AppManifest`; nothing downstream re-checks it.

Callers: the ``deploy`` command handler and ``edgefleet`` CLI (via :func:`load_manifest` /
:func:`load_manifests`), and the reconcile loop (via :func:`replica_name`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.codec import validate
from edgefleet_protocol.commands import MAX_REPLICAS, manifest_from_text
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import Identifier, validate_id
from edgefleet_protocol.workload import WorkloadSpec
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_ID_LENGTH = 63
DAEMON_HASH_DIGITS = 10
MAX_MANIFEST_BYTES = 256 * 1024
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Free-form names a node reports (label keys, regions, sensors, probe targets): printable,
# no spaces, short enough to read in a rejection reason.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,62}")
_TOKEN_RULE = "1-63 characters of letters, digits, '.', '_', '/', ':', '-'"

Mode = Literal["replicated", "daemon"]
Spread = Literal["node", "site"]
Strategy = Literal["spread", "binpack"]


def _check_tokens(values: list[str], what: str) -> list[str]:
    for value in values:
        if _TOKEN.fullmatch(value) is None:
            raise ValueError(f"{what} {value!r} is not valid: {_TOKEN_RULE}")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a {what} more than once")
    return values


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if _TOKEN.fullmatch(key) is None:
            raise ValueError(f"label key {key!r} is not valid: {_TOKEN_RULE}")
        if len(value) > 63:
            raise ValueError(f"label {key!r}: value longer than 63 characters")
    return labels


def _field_error(model: str, loc: tuple[str, ...], reason: str, value: Any) -> ValidationError:
    # A cross-field rule is checked after the model is built, where pydantic would report it
    # at the model's root; raising a ValidationError with our own location keeps the field
    # path ("replicas", "name") that tells the author what to change.
    detail = InitErrorDetails(
        type=PydanticCustomError("manifest_rule", reason), loc=loc, input=value
    )
    return ValidationError.from_exception_data(model, [detail])


class LatencyLimit(StrictSpec):
    """Round-trip latency to ``target`` must stay under ``ms``, as measured by the node's own
    probe (telemetry ``latency_ms.<target>``); a node without that probe is not eligible."""

    target: str = Field(min_length=1, max_length=63)
    ms: float = Field(gt=0, le=600_000)

    @field_validator("target")
    @classmethod
    def _target_shape(cls, target: str) -> str:
        _check_tokens([target], "probe target")
        return target


class Placement(StrictSpec):
    """Where replicas may run (filters) and how they are spread (scorers).

    Every constraint left empty allows everything. ``spread`` unset means "node" for the
    ``spread`` strategy and no spreading for ``binpack`` (which wants the fewest nodes).
    """

    sites: list[Identifier] = Field(default_factory=list, max_length=1024)
    selector: dict[str, str] = Field(default_factory=dict)
    selector_not: dict[str, str] = Field(default_factory=dict)
    regions: list[str] = Field(default_factory=list, max_length=256)
    max_latency_ms: LatencyLimit | None = None
    min_bandwidth_mbps: float | None = Field(default=None, ge=0, le=1_000_000)
    sensors: list[str] = Field(default_factory=list, max_length=64)
    accelerators: list[str] = Field(default_factory=list, max_length=32)
    arch: list[str] = Field(default_factory=list, max_length=16)
    max_per_node: int | None = Field(default=None, le=MAX_REPLICAS)
    spread: Spread | None = None
    strategy: Strategy = "spread"

    @field_validator("sites")
    @classmethod
    def _sites_unique(cls, sites: list[str]) -> list[str]:
        if len(set(sites)) != len(sites):
            raise ValueError("lists a site more than once")
        return sites

    @field_validator("selector", "selector_not")
    @classmethod
    def _labels_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        return _check_labels(labels)

    @field_validator("regions")
    @classmethod
    def _regions_shape(cls, regions: list[str]) -> list[str]:
        return _check_tokens(regions, "region")

    @field_validator("sensors")
    @classmethod
    def _sensors_shape(cls, sensors: list[str]) -> list[str]:
        return _check_tokens(sensors, "sensor")

    @field_validator("accelerators")
    @classmethod
    def _accelerators_shape(cls, accelerators: list[str]) -> list[str]:
        return _check_tokens(accelerators, "accelerator")

    @field_validator("arch")
    @classmethod
    def _arch_shape(cls, arch: list[str]) -> list[str]:
        return _check_tokens(arch, "arch")

    @field_validator("max_per_node")
    @classmethod
    def _max_per_node_possible(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"must be at least 1 ({value} would allow no replica anywhere); "
                "leave it out for no limit"
            )
        return value

    @model_validator(mode="after")
    def _selectors_agree(self) -> Placement:
        clash = sorted(k for k, v in self.selector.items() if self.selector_not.get(k) == v)
        if clash:
            key = clash[0]
            raise _field_error(
                "Placement",
                ("selector_not", key),
                f"label {key}={self.selector[key]} is both required and forbidden",
                self.selector_not[key],
            )
        return self

    @property
    def effective_spread(self) -> Spread | None:
        """The spreading dimension in force: explicit, else "node" for the spread strategy."""
        if self.spread is not None:
            return self.spread
        return "node" if self.strategy == "spread" else None


class Disconnect(StrictSpec):
    """What happens when a node hosting a replica goes offline or stale.

    The replica stays assigned for ``grace_s`` (a reboot or a short uplink loss restarts
    nothing). After that the node is lost: with ``replace`` the replica is placed elsewhere;
    without it the replica stays pinned to the node until it returns (hardware-bound apps).
    """

    grace_s: float = Field(default=30.0, ge=0, le=30 * 24 * 3600)
    replace: bool = True


BUILTIN_METRICS = ("cpu_pct", "memory_pct")
"""Per-workload telemetry values an autoscaler may follow besides custom ``metrics``."""


class Autoscale(StrictSpec):
    """Horizontal autoscaling on one per-workload metric, averaged over running replicas.

    ``metric`` is ``cpu_pct`` (percent of one core), ``memory_pct`` (percent of the
    replica's memory limit) or the name of a custom workload metric in telemetry. The count
    moves to ``ceil(replicas x observed / target)`` when the ratio leaves the
    ``1 ± tolerance`` band, within ``min``..``max``; a scale-up waits
    ``scale_up_cooldown_s`` and a scale-down ``scale_down_cooldown_s`` after the last
    change (so a burst is followed quickly and a lull slowly, without flapping).
    """

    metric: str = Field(min_length=1, max_length=63)
    target: float = Field(gt=0, le=1e12)
    min: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max: int = Field(ge=1, le=MAX_REPLICAS)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_up_cooldown_s: float = Field(default=30.0, ge=0, le=24 * 3600)
    scale_down_cooldown_s: float = Field(default=300.0, ge=0, le=24 * 3600)

    @field_validator("metric")
    @classmethod
    def _metric_shape(cls, metric: str) -> str:
        _check_tokens([metric], "metric")
        return metric

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Autoscale:
        if self.min > self.max:
            raise _field_error(
                "Autoscale", ("min",), f"{self.min} is above max {self.max}", self.min
            )
        return self


class Disruption(StrictSpec):
    """How much voluntary disruption the app tolerates: ``drain`` and rebalancing move at
    most ``max_unavailable`` of its replicas at a time (make-before-break), and
    ``rebalance: false`` keeps its replicas where they run when nodes join."""

    max_unavailable: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    rebalance: bool = True


class AppManifest(StrictSpec):
    """One application: a workload run as ``replicas`` copies or once per matching node.

    With ``autoscale`` the replica count is the autoscaler's to change (it rewrites
    ``replicas`` within ``min``..``max``); leaving ``replicas`` out starts at ``min``.
    """

    name: Identifier
    workload: WorkloadSpec
    mode: Mode = "replicated"
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    placement: Placement = Field(default_factory=Placement)
    disconnect: Disconnect = Field(default_factory=Disconnect)
    autoscale: Autoscale | None = None
    disruption: Disruption = Field(default_factory=Disruption)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        return _check_labels(labels)

    @model_validator(mode="before")
    @classmethod
    def _autoscale_starts_at_min(cls, data: Any) -> Any:
        # An autoscaled app may leave its count out: it starts at the autoscaler's minimum.
        if isinstance(data, dict) and data.get("replicas") is None:
            auto = data.get("autoscale")
            if isinstance(auto, dict) and data.get("mode", "replicated") == "replicated":
                low = auto.get("min", 1)
                if isinstance(low, int) and not isinstance(low, bool):
                    return {**data, "replicas": low}
        return data

    @model_validator(mode="after")
    def _mode_and_names(self) -> AppManifest:
        if self.mode == "daemon" and self.replicas is not None:
            raise _field_error(
                "AppManifest",
                ("replicas",),
                "must be left out with mode: daemon (one replica runs on each matching node)",
                self.replicas,
            )
        if self.mode == "daemon" and self.autoscale is not None:
            raise _field_error(
                "AppManifest",
                ("autoscale",),
                "cannot be used with mode: daemon (its count follows the matching nodes)",
                None,
            )
        if self.mode == "replicated" and self.replicas is None:
            raise _field_error(
                "AppManifest",
                ("replicas",),
                "is required with mode: replicated (use 0 to keep the app but run nothing)",
                None,
            )
        auto = self.autoscale
        if auto is not None and not auto.min <= (self.replicas or 0) <= auto.max:
            raise _field_error(
                "AppManifest",
                ("replicas",),
                f"{self.replicas} is outside autoscale bounds {auto.min}..{auto.max} (leave "
                "it out to start at min)",
                self.replicas,
            )
        most = max(self.replicas or 0, auto.max if auto is not None else 0)
        longest = _longest_replica_name(self.name, self.mode, most)
        if len(longest) > MAX_ID_LENGTH:
            raise _field_error(
                "AppManifest",
                ("name",),
                f"is too long for its replica names: {longest!r} would be {len(longest)} "
                f"characters; at most {MAX_ID_LENGTH} allowed",
                self.name,
            )
        return self

    @property
    def is_daemon(self) -> bool:
        return self.mode == "daemon"


def with_replicas(app: AppManifest, replicas: int) -> AppManifest:
    """``app`` scaled to ``replicas``, validated again (``model_copy`` would skip the checks
    that a daemon has no count and that the new replica names still fit 63 characters).
    Raises :class:`ProtocolError` naming ``replicas`` or ``name``."""
    return validate(AppManifest, {**app.model_dump(), "replicas": replicas})


def _longest_replica_name(app: str, mode: Mode, replicas: int) -> str:
    if mode == "daemon":
        # Node names that do not fit are replaced by a fixed-length hash, so that form is
        # the longest a daemon replica name can get.
        return f"{app}-{'0' * DAEMON_HASH_DIGITS}"
    return f"{app}-{max(replicas - 1, 0)}"


def replica_name(app: str, index: int | None = None, node: str | None = None) -> str:
    """The workload name of one replica: ``<app>-<index>`` (replicated) or ``<app>-<node>``
    (daemon), the latter shortened to ``<app>-<10 hex of sha256(node)>`` when it would not
    fit the 63-character identifier rule. Exactly one of ``index`` and ``node`` is given."""
    if (index is None) == (node is None):
        raise TypeError("replica_name needs exactly one of index= or node=")
    if index is not None:
        if index < 0:
            raise ProtocolError("index", f"must be 0 or more, got {index}")
        name = f"{app}-{index}"
    else:
        assert node is not None
        name = f"{app}-{node}"
        if len(name) > MAX_ID_LENGTH:
            digest = hashlib.sha256(node.encode()).hexdigest()[:DAEMON_HASH_DIGITS]
            name = f"{app}-{digest}"
    return validate_id(name, kind="replica name")


def replica_index(app: str, replica: str) -> int | None:
    """The index of a replicated-mode replica name of ``app``, or ``None`` if it is not one
    (a daemon-mode name, another app's, or a non-canonical number such as ``app-01``)."""
    prefix = f"{app}-"
    if not replica.startswith(prefix):
        return None
    digits = replica[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or (digits != "0" and digits[0] == "0"):
        return None
    return int(digits)


class ManifestError(ProtocolError):
    """A manifest that cannot be read or is invalid. ``field`` is the dotted path inside the
    manifest (or ``source`` itself for unreadable text); ``str()`` names the source too."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.source = source
        self.args = (f"{source}: {field}: {reason}",)

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.reason}"


def load_manifest(text: str | bytes, *, source: str = "manifest") -> AppManifest:
    """Parse YAML or JSON text into a validated :class:`AppManifest`.

    Raises :class:`ManifestError` (a :class:`ProtocolError`): ``field`` is the dotted path
    of the first problem (``placement.max_per_node``), or ``source`` when the text itself
    is not a readable mapping.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(source, source, f"{len(text)} bytes exceeds {MAX_MANIFEST_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(source, source, f"is not UTF-8 (byte {exc.start})") from None
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, source, f"is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        # The same parser as the ``deploy`` command: YAML without aliases, JSON values only.
        data = manifest_from_text(text)
    except ValueError as exc:
        raise ManifestError(source, source, str(exc).removeprefix("manifest ")) from None
    try:
        return validate(AppManifest, data, forbid_unknown=True)
    except ProtocolError as exc:
        raise ManifestError(source, _path_of(exc), exc.reason) from None


_UNKNOWN = re.compile(r"unknown field\(s\) ([^;,]+)")


def _path_of(exc: ProtocolError) -> str:
    # An unknown key is refused by the model that holds it, so pydantic's path stops at that
    # model ("payload" for the root); point at the key itself, which is what to fix.
    unknown = _UNKNOWN.match(exc.reason)
    if unknown is None:
        return exc.field
    key = unknown.group(1)
    return key if exc.field == "payload" else f"{exc.field}.{key}"


def manifest_files(path: str | Path) -> list[Path]:
    """The manifest files at ``path``: the file itself, or a directory's ``*.yaml``,
    ``*.yml`` and ``*.json`` files (not recursive), sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ManifestError(str(path), "path", "does not exist")
    return sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())


def load_manifests(path_or_dir: str | Path) -> list[AppManifest]:
    """Every manifest of a file or directory, in file-name order.

    Raises the first :class:`ManifestError`, whose ``source`` is the file; two files that
    define the same app name are an error (the second one is named).
    """
    manifests: list[AppManifest] = []
    defined_in: dict[str, Path] = {}
    for file in manifest_files(path_or_dir):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ManifestError(str(file), str(file), f"cannot be read ({exc.strerror})") from None
        manifest = load_manifest(raw, source=str(file))
        earlier = defined_in.setdefault(manifest.name, file)
        if earlier != file:
            raise ManifestError(
                str(file), "name", f"app {manifest.name!r} is already defined in {earlier}"
            )
        manifests.append(manifest)
    return manifests
