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

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgefleet_protocol import ProtocolError
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES
from edgefleet_protocol.scrape import Address
from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_agent.core import setting_values as v
from edgefleet_agent.core.setting_values import Parser, ProbeTarget
from edgefleet_agent.core.telemetry import Deadbands

RUNTIME_CHOICES = ("auto", "docker", "process", "simulated")
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
ENV_PREFIX = "EDGEFLEET_"
REPO_PROFILES = Path(__file__).resolve().parents[2] / "device-profiles"
SYSTEM_PROFILES = Path("/etc/edgefleet/profiles")
DEFAULT_KEEPALIVE_S = 60


class SettingsError(ValueError):
    """An invalid setting: ``setting`` is its name, ``source`` where the value came from."""

    def __init__(self, setting: str, reason: str, *, source: str = "") -> None:
        where = f" (from {source})" if source else ""
        super().__init__(f"invalid setting '{setting}'{where}: {reason}")
        self.setting = setting
        self.reason = reason
        self.source = source


DEFAULT_WORKLOAD_USER = "nobody"
AS_AGENT = "-"
"""``workload_user`` value: run process workloads as the agent itself."""


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
    metrics_addr: Address | None = None
    trust_anchor: Path | None = None
    policy_file: Path | None = None
    """The gateway's own compliance policy (the orchestrator cannot change it)."""
    """The gateway's trust anchor file; ``None`` is unsigned mode (development)."""
    sim_seed: int = 0
    sim_start_delay_s: float = 0.0
    sim_failure_rate: float = 0.0
    log_level: str = "info"
    proxy_ports: tuple[int, int] = (17000, 17999)
    proxy_docker_host: str | None = None
    workload_user: str = DEFAULT_WORKLOAD_USER
    """Who process workloads run as when the agent runs as root and the workload names no
    ``user`` (:data:`AS_AGENT`, ``-``: as the agent itself). Keeps the agent's key,
    environment and state out of a workload's reach."""
    event_loop: str = "auto"
    """``auto`` (the default: uvloop when it is installed), ``uvloop`` or ``asyncio``:
    see :func:`edgefleet_agent.cli.new_event_loop`."""


PARSERS: dict[str, Parser] = {
    "node": v.identifier("node"),
    "site": v.identifier("site"),
    "broker": v.plain_text,
    "state_dir": v.path,
    "runtime": v.choice(RUNTIME_CHOICES),
    "profile": v.plain_text,
    "profiles_dir": v.path,
    "labels": v.labels,
    "probes": v.probes,
    "sensors": v.sensors,
    "addresses": v.addresses,
    "region": v.optional_text,
    "root": v.root,
    "heartbeat_s": v.number(low=1, high=86_400),
    "keepalive_s": v.number(low=5, high=65_535, integer=True),
    "sample_interval_s": v.number(low=0.1, high=86_400),
    "probe_interval_s": v.number(low=1, high=86_400),
    "reconcile_interval_s": v.number(low=0.1, high=3_600),
    "capabilities_interval_s": v.number(low=1, high=86_400),
    "deadbands": v.deadbands,
    "max_payload_bytes": v.number(low=1024, high=16 * 1024 * 1024, integer=True),
    "metrics_addr": v.loopback_address,
    "trust_anchor": v.path,
    "policy_file": v.path,
    "sim_seed": v.number(low=0, high=2**63, integer=True),
    "sim_start_delay_s": v.number(low=0, high=3_600),
    "sim_failure_rate": v.number(low=0, high=1),
    "log_level": v.choice(LOG_LEVELS),
    "proxy_ports": v.port_range,
    "proxy_docker_host": v.optional_text,
    "workload_user": v.optional_text,
    "event_loop": v.choice(EVENT_LOOPS),
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
