"""Device profiles: what one class of gateway hardware offers, from its published spec.

One YAML file per device class lives in ``device-profiles/``. The agent may name its profile
in its capabilities, the fleet simulator builds simulated nodes from profiles, and operators
read them to size workloads. Profiles are written by people, so they are validated like
manifests: unknown keys are refused (a typo such as ``memroy_mb`` must not silently vanish),
and every error names the file and the field path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.codec import validate
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import Identifier

Arch = Literal["aarch64", "x86_64", "armv7l", "armv6l"]
LinkType = Literal["ethernet", "wifi", "lte", "5g"]
ProfileRuntime = Literal["docker", "process"]

PROFILE_SUFFIXES = (".yaml", ".yml")
_LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?")
_MAX_PROFILE_BYTES = 64 * 1024


class Cpu(StrictSpec):
    """``cores`` counts physical cores; ``threads`` the hardware threads the OS schedules on
    (defaults to ``cores``; differs on SMT/hybrid parts). ``max_mhz`` is the published peak."""

    cores: int = Field(ge=1, le=1024)
    threads: int | None = Field(default=None, ge=1, le=4096)
    model: str = Field(min_length=1, max_length=128)
    max_mhz: int = Field(gt=0, le=10_000)

    @model_validator(mode="after")
    def _threads_cover_cores(self) -> Cpu:
        if self.threads is not None and self.threads < self.cores:
            raise ValueError(f"threads ({self.threads}) cannot be fewer than cores ({self.cores})")
        return self


class LatencyRange(StrictSpec):
    """Round-trip latency to the site broker, in milliseconds. Vendors do not publish it, so
    it is a modelling assumption per link type (used by the simulator and latency filters)."""

    min: float = Field(ge=0, le=60_000)
    max: float = Field(ge=0, le=60_000)

    @model_validator(mode="after")
    def _ordered(self) -> LatencyRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Link(StrictSpec):
    """The gateway's uplink. ``bandwidth_mbps`` is the nominal published rate (downlink
    where the link is asymmetric)."""

    type: LinkType
    bandwidth_mbps: float = Field(gt=0, le=1_000_000)
    latency_ms: LatencyRange


class Profile(StrictSpec):
    """One device class. ``memory_mb`` and ``storage_mb`` are what the class ships with (for
    kits without RAM or disk, the configuration the profile's comments state)."""

    id: Identifier
    vendor: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=128)
    arch: Arch
    cpu: Cpu
    memory_mb: int = Field(gt=0, le=4_194_304)
    storage_mb: int = Field(ge=0, le=1_073_741_824)
    link: Link
    accelerators: list[str] = Field(default_factory=list, max_length=32)
    sensors: list[str] = Field(default_factory=list, max_length=64)
    runtimes: list[ProfileRuntime] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    source: str = Field(min_length=1, max_length=512)

    @field_validator("labels")
    @classmethod
    def _label_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if _LABEL_KEY.fullmatch(key) is None:
                raise ValueError(
                    f"label key {key!r}: 1-63 characters of a-z, 0-9, '.', '_', '/', '-', "
                    "starting and ending with a letter or digit"
                )
            if len(value) > 63:
                raise ValueError(f"label {key!r}: value longer than 63 characters")
        return labels

    @field_validator("source")
    @classmethod
    def _source_is_a_web_page(cls, source: str) -> str:
        if not source.startswith(("https://", "http://")) or any(c.isspace() for c in source):
            raise ValueError("must be the http(s) URL of the published specification")
        return source

    @field_validator("runtimes")
    @classmethod
    def _runtimes_unique(cls, runtimes: list[str]) -> list[str]:
        if len(set(runtimes)) != len(runtimes):
            raise ValueError("lists a runtime more than once")
        return runtimes


class ProfileError(ProtocolError):
    """A profile file that is unreadable or invalid: ``str()`` reads ``file: field: reason``."""

    def __init__(self, file: Path, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.file = file
        self.args = (f"{file}: {field}: {reason}",)

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ProfileCheck:
    """The outcome for one file of a profiles directory: a profile or the reason it is not."""

    path: Path
    profile: Profile | None
    error: ProfileError | None


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file; its ``id`` must equal the file name's stem, so a
    profile is found by id without reading the whole directory."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(path, "file", f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > _MAX_PROFILE_BYTES:
        raise ProfileError(path, "file", f"{len(raw)} bytes exceeds {_MAX_PROFILE_BYTES}")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProfileError(path, "file", f"is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ProfileError(path, "file", f"must hold a mapping, got {type(data).__name__}")
    try:
        profile = validate(Profile, data, forbid_unknown=True)
    except ProtocolError as exc:
        # The codec names a top-level problem "payload"; in a file it is the whole profile.
        field = "profile" if exc.field == "payload" else exc.field
        raise ProfileError(path, field, exc.reason) from None
    if profile.id != path.stem:
        raise ProfileError(path, "id", f"{profile.id!r} must match the file name {path.stem!r}")
    return profile


def profile_files(directory: str | Path) -> list[Path]:
    """The profile files of a directory, sorted by name (so errors come in a stable order)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ProfileError(directory, "directory", "does not exist or is not a directory")
    return sorted(p for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES and p.is_file())


def check_profiles(directory: str | Path) -> list[ProfileCheck]:
    """Validate every profile file of ``directory``; later duplicates of an id are errors."""
    checks: list[ProfileCheck] = []
    first_file_for: dict[str, Path] = {}
    for path in profile_files(directory):
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            checks.append(ProfileCheck(path, None, exc))
            continue
        earlier = first_file_for.setdefault(profile.id, path)
        if earlier != path:
            error = ProfileError(path, "id", f"{profile.id!r} is already defined in {earlier}")
            checks.append(ProfileCheck(path, None, error))
        else:
            checks.append(ProfileCheck(path, profile, None))
    return checks


def load_profiles(directory: str | Path) -> dict[str, Profile]:
    """Every profile of ``directory`` by id; raises the first :class:`ProfileError` found."""
    profiles: dict[str, Profile] = {}
    for check in check_profiles(directory):
        if check.error is not None:
            raise check.error
        if check.profile is not None:
            profiles[check.profile.id] = check.profile
    return profiles
