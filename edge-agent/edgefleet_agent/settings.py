"""Agent settings: one frozen value, resolved from flags > environment > config file > defaults.

:func:`resolve_settings` is pure (three plain mappings in, :class:`AgentSettings` out) so the
precedence rules and every error message are unit-tested as tables; :func:`read_config_file`
is the only I/O. Each setting has one name used everywhere: ``--heartbeat-s`` on the command
line, ``EDGEFLEET_HEARTBEAT_S`` in the environment, ``heartbeat_s`` (or ``heartbeat-s``) in a
YAML/TOML file. A mapping or list setting (labels, probes, sensors) is taken whole from the
highest source that sets it; sources are never merged, so what you see in one place is all
there is.

Every invalid value raises :class:`SettingsError` naming the setting, where the value came
from and what is wrong, so ``edgefleet-agent run`` can fail fast with exit code 2.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgefleet_protocol import ProtocolError, validate_id
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES
from edgefleet_protocol.topics import DEFAULT_ROOT, validate_root

from edgefleet_agent.telemetry import Deadbands

RUNTIME_CHOICES = ("auto", "docker", "process", "simulated")
LOG_LEVELS = ("debug", "info", "warning", "error")
ENV_PREFIX = "EDGEFLEET_"
REPO_PROFILES = Path(__file__).resolve().parents[2] / "device-profiles"
SYSTEM_PROFILES = Path("/etc/edgefleet/profiles")
DEFAULT_KEEPALIVE_S = 60
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")
_PROBE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_SENSOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


class SettingsError(ValueError):
    """An invalid setting: ``setting`` is its name, ``source`` where the value came from."""

    def __init__(self, setting: str, reason: str, *, source: str = "") -> None:
        where = f" (from {source})" if source else ""
        super().__init__(f"invalid setting '{setting}'{where}: {reason}")
        self.setting = setting
        self.reason = reason
        self.source = source


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class AgentSettings:
    node: str
    site: str
    broker: BrokerSettings
    state_dir: Path
    runtime: str = "auto"
    profile: str | None = None
    profile_path: Path | None = None
    profiles_dir: Path = SYSTEM_PROFILES
    labels: Mapping[str, str] = field(default_factory=dict)
    probes: Mapping[str, ProbeTarget] = field(default_factory=dict)
    sensors: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    region: str | None = None
    root: str = DEFAULT_ROOT
    heartbeat_s: float = 60.0
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    sample_interval_s: float = 10.0
    probe_interval_s: float = 60.0
    reconcile_interval_s: float = 10.0
    capabilities_interval_s: float = 60.0
    deadbands: Deadbands = field(default_factory=Deadbands)
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    sim_seed: int = 0
    sim_start_delay_s: float = 0.0
    sim_failure_rate: float = 0.0
    log_level: str = "info"


# -- value parsers: each takes a raw value (str from flags/env, native from a file) --------

Parser = Callable[[Any], Any]


def _text(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"must be text, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _identifier(kind: str) -> Parser:
    def parse(raw: Any) -> str:
        try:
            return validate_id(_text(raw), kind=kind)
        except ProtocolError as exc:
            raise ValueError(exc.reason) from None

    return parse


def _number(*, low: float, high: float, integer: bool = False, low_open: bool = False) -> Parser:
    def parse(raw: Any) -> float | int:
        if isinstance(raw, bool):
            raise ValueError(f"must be a number, got {raw!r}")
        try:
            value = int(raw) if integer else float(raw)
        except (TypeError, ValueError):
            kind = "a whole number" if integer else "a number"
            raise ValueError(f"must be {kind}, got {raw!r}") from None
        if math.isnan(value) or value < low or value > high or (low_open and value == low):
            bound = ">" if low_open else ">="
            raise ValueError(f"must be {bound} {low:g} and <= {high:g}, got {raw!r}")
        return value

    return parse


def _choice(choices: tuple[str, ...]) -> Parser:
    def parse(raw: Any) -> str:
        text = _text(raw).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return text

    return parse


def _items(raw: Any) -> list[str]:
    """A list from a file list, repeated flags, or a comma-separated env value."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        return [_text(item) for item in raw]
    raise ValueError(f"must be a list, got {type(raw).__name__}")


def _pairs(raw: Any) -> dict[str, str]:
    """A mapping from a file mapping, or ``key=value`` items."""
    if isinstance(raw, dict):
        return {str(k): _text(v) for k, v in raw.items()}
    pairs: dict[str, str] = {}
    for item in _items(raw):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _labels(raw: Any) -> dict[str, str]:
    labels = _pairs(raw)
    for key, value in labels.items():
        if _LABEL_KEY.fullmatch(key) is None:
            raise ValueError(f"label key {key!r} must match {_LABEL_KEY.pattern}")
        if len(value) > 63 or not value.isprintable():
            raise ValueError(f"label {key!r}: value must be 0-63 printable characters")
    return labels


def _probes(raw: Any) -> dict[str, ProbeTarget]:
    probes: dict[str, ProbeTarget] = {}
    for name, target in _pairs(raw).items():
        if _PROBE_NAME.fullmatch(name) is None:
            raise ValueError(f"probe name {name!r} must match {_PROBE_NAME.pattern}")
        if name == "broker":
            raise ValueError("probe name 'broker' is reserved for the broker round trip")
        host, sep, port_text = target.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host:
            raise ValueError(f"probe {name!r}: expected host:port, got {target!r}")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"probe {name!r}: port must be 1-65535, got {port_text!r}")
        probes[name] = ProbeTarget(host, int(port_text))
    return probes


def _sensors(raw: Any) -> tuple[str, ...]:
    sensors = _items(raw)
    for sensor in sensors:
        if _SENSOR.fullmatch(sensor) is None:
            raise ValueError(f"sensor {sensor!r} must match {_SENSOR.pattern}")
    return tuple(dict.fromkeys(sensors))


def _addresses(raw: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_items(raw)))


def _deadbands(raw: Any) -> Deadbands:
    bands = Deadbands()
    positive = _number(low=0, high=1e9)
    for key, value in _pairs(raw).items():
        name = key.replace("-", "_")
        if name not in Deadbands.names():
            raise ValueError(f"unknown deadband {key!r}; known: {', '.join(Deadbands.names())}")
        try:
            bands = replace(bands, **{name: float(positive(value))})
            if name == "confirm_samples" and bands.confirm_samples < 1:
                raise ValueError(f"must be >= 1, got {value!r}")
        except ValueError as exc:
            raise ValueError(f"deadband {key!r} {exc}") from None
    return bands


def _root(raw: Any) -> str:
    try:
        return validate_root(_text(raw))
    except ProtocolError as exc:
        raise ValueError(exc.reason) from None


def _path(raw: Any) -> Path:
    return Path(_text(raw)).expanduser()


def _optional_text(raw: Any) -> str:
    text = _text(raw)
    if len(text) > 64:
        raise ValueError("must be at most 64 characters")
    return text


PARSERS: dict[str, Parser] = {
    "node": _identifier("node"),
    "site": _identifier("site"),
    "broker": _text,
    "state_dir": _path,
    "runtime": _choice(RUNTIME_CHOICES),
    "profile": _text,
    "profiles_dir": _path,
    "labels": _labels,
    "probes": _probes,
    "sensors": _sensors,
    "addresses": _addresses,
    "region": _optional_text,
    "root": _root,
    "heartbeat_s": _number(low=1, high=86_400),
    "keepalive_s": _number(low=5, high=65_535, integer=True),
    "sample_interval_s": _number(low=0.1, high=86_400),
    "probe_interval_s": _number(low=1, high=86_400),
    "reconcile_interval_s": _number(low=0.1, high=3_600),
    "capabilities_interval_s": _number(low=1, high=86_400),
    "deadbands": _deadbands,
    "max_payload_bytes": _number(low=1024, high=16 * 1024 * 1024, integer=True),
    "sim_seed": _number(low=0, high=2**63, integer=True),
    "sim_start_delay_s": _number(low=0, high=3_600),
    "sim_failure_rate": _number(low=0, high=1),
    "log_level": _choice(LOG_LEVELS),
}
REQUIRED = ("node", "site")
DEFAULTS: dict[str, Any] = {
    "broker": "mqtt://127.0.0.1:1883",
    "state_dir": "/var/lib/edgefleet-agent",
}
FILE_ONLY_KEYS = frozenset({"config"})


def setting_names() -> tuple[str, ...]:
    return tuple(PARSERS)


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def flag_name(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def default_profiles_dir() -> Path:
    """The repo's ``device-profiles/`` in a checkout, else ``/etc/edgefleet/profiles``."""
    return REPO_PROFILES if REPO_PROFILES.is_dir() else SYSTEM_PROFILES


def resolve_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file_values: Mapping[str, Any],
    *,
    file_name: str = "config file",
) -> AgentSettings:
    """Pick each setting from the highest source that sets it, parse and validate it."""
    normalized_file = {str(k).replace("-", "_"): v for k, v in file_values.items()}
    unknown = sorted(set(normalized_file) - set(PARSERS) - FILE_ONLY_KEYS)
    if unknown:
        raise SettingsError(
            unknown[0], f"unknown setting; known: {', '.join(PARSERS)}", source=file_name
        )
    values: dict[str, Any] = {}
    for name, parse in PARSERS.items():
        raw, source = _pick(name, flags, env, normalized_file, file_name)
        if raw is None:
            if name in REQUIRED:
                raise SettingsError(
                    name,
                    f"is required (set {flag_name(name)}, {env_name(name)} or '{name}' in "
                    "the config file)",
                )
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise SettingsError(name, str(exc), source=source) from None
    return _assemble(values, flags, env, normalized_file, file_name)


def _pick(
    name: str,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file_values: Mapping[str, Any],
    file_name: str,
) -> tuple[Any, str]:
    if flags.get(name) is not None:
        return flags[name], flag_name(name)
    if env.get(env_name(name)) not in (None, ""):
        return env[env_name(name)], env_name(name)
    if file_values.get(name) is not None:
        return file_values[name], f"{file_name}: {name}"
    if name in DEFAULTS:
        return DEFAULTS[name], "default"
    return None, ""


def _assemble(
    values: dict[str, Any],
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file_values: Mapping[str, Any],
    file_name: str,
) -> AgentSettings:
    _, broker_source = _pick("broker", flags, env, file_values, file_name)
    url: str = values.pop("broker")
    try:
        broker = BrokerSettings.from_url(url)
    except ProtocolError as exc:
        raise SettingsError("broker", exc.reason, source=broker_source) from None
    keepalive = int(values.get("keepalive_s", DEFAULT_KEEPALIVE_S))
    if "keepalive=" not in url:  # the URL's own keepalive= wins over the setting
        broker = replace(broker, keepalive=keepalive)
    values.setdefault("profiles_dir", default_profiles_dir())
    profile = values.get("profile")
    if profile is not None:
        _, source = _pick("profile", flags, env, file_values, file_name)
        values["profile_path"] = resolve_profile(profile, values["profiles_dir"], source=source)
    return AgentSettings(broker=broker, **values)


def resolve_profile(profile: str, profiles_dir: Path, *, source: str = "") -> Path:
    """A profile id (``rpi4``) names ``<profiles_dir>/rpi4.yaml``; anything with a slash or
    a YAML suffix is a path. The file must exist."""
    looks_like_path = "/" in profile or profile.endswith((".yaml", ".yml"))
    if looks_like_path:
        path = Path(profile).expanduser()
        if not path.is_file():
            raise SettingsError("profile", f"no such file: {path}", source=source)
        return path
    for suffix in (".yaml", ".yml"):
        candidate = profiles_dir / f"{profile}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in profiles_dir.glob("*.y*ml")) if profiles_dir.is_dir() else []
    listing = f"available: {', '.join(known)}" if known else "that directory has no profiles"
    raise SettingsError(
        "profile", f"no profile {profile!r} in {profiles_dir} ({listing})", source=source
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML (``.yaml``/``.yml``/``.json``) or TOML (``.toml``) file as a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError("config", f"cannot read {path}: {exc.strerror}") from None
    import yaml  # only when a file is read: every megabyte of RSS counts on a gateway

    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SettingsError("config", f"{path} is not valid: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError("config", f"{path} must hold a mapping of settings")
    agent = data.get("agent")
    # A shared file may nest the agent's settings under an ``agent:`` key.
    return dict(agent) if isinstance(agent, dict) and len(data) == 1 else data
