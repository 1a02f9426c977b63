"""Settings of ``edgefleet-agent simulate``: one frozen value, checked before anything starts.

Pure. :func:`resolve_simulate_settings` turns the command line's strings into a
:class:`SimulateSettings`; the programmatic API builds one directly. Either way
:func:`check_settings` refuses impossible values with a :class:`SettingsError` naming the
setting (the CLI prints it as one line and exits 2), and :func:`fd_budget` says how many
file descriptors a fleet needs, so a fleet too large for the limit is refused up front
instead of failing half-connected.

Scheduled faults (``--kill``, ``--cut``, ``--flap``) are written ``N@T`` — N nodes, T
seconds after the fleet is ready — with a suffix for the kinds that have a duration:

* ``--kill 5@30``: five nodes die at 30 s (socket closed: the broker publishes their wills);
* ``--cut 5@30`` or ``--cut 5@30+20``: five links go silent at 30 s (forever, or for 20 s);
  nothing reaches the broker, which publishes the wills when the keepalive expires;
* ``--flap 3@10:2/8``: three links go down for 2 s and up for 8 s, repeatedly, from 10 s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgefleet_protocol import ProtocolError
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.topics import DEFAULT_ROOT, validate_root

from edgefleet_agent.settings import LOG_LEVELS, SettingsError, default_profiles_dir
from edgefleet_agent.simulate.plan import ASSIGNMENTS, Assignment

FaultKind = Literal["kill", "cut", "flap"]
MAX_COUNT = 100_000
FDS_PER_DIRECT_NODE = 1
"""The agent's own socket to the broker."""
FDS_PER_FAULTABLE_NODE = 4
"""The agent's socket, the link's listener, and the link's two ends of the pipe."""
FD_RESERVE = 256
"""Everything else: stdio, the event loop, the watcher, store files being written."""

NUMBERS: dict[str, tuple[float, float, bool]] = {
    "count": (1, MAX_COUNT, True),
    "sites": (1, MAX_COUNT, True),
    "seed": (0, 2**63, True),
    "start_delay_s": (0, 3_600, False),
    "failure_rate": (0, 1, False),
    "heartbeat_s": (1, 86_400, False),
    "keepalive_s": (5, 65_535, True),
    "sample_interval_s": (0.1, 86_400, False),
    "reconcile_interval_s": (0.1, 3_600, False),
    "capabilities_interval_s": (1, 86_400, False),
    "ready_timeout_s": (1, 86_400, False),
}
"""Numeric settings: (lowest, highest, whole number)."""

_FAULT = re.compile(
    r"(?P<n>\d+)@(?P<at>\d+(?:\.\d+)?)"
    r"(?:\+(?P<for>\d+(?:\.\d+)?)|:(?P<down>\d+(?:\.\d+)?)/(?P<up>\d+(?:\.\d+)?))?"
)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A scheduled fault: ``count`` nodes at ``at_s`` seconds after the fleet is ready."""

    kind: FaultKind
    count: int
    at_s: float
    for_s: float | None = None
    """``cut``: restore the links after this long (``None``: never)."""
    down_s: float = 0.0
    up_s: float = 0.0
    """``flap``: each cycle is ``down_s`` down, then ``up_s`` up."""


@dataclass(frozen=True, slots=True)
class SimulateSettings:
    count: int
    sites: int
    broker: BrokerSettings = field(default_factory=lambda: BrokerSettings.from_url(
        "mqtt://127.0.0.1:1883"))  # fmt: skip
    profiles_dir: Path = field(default_factory=default_profiles_dir)
    profile_weights: Mapping[str, int] = field(default_factory=dict)
    assign: Assignment = "round-robin"
    seed: int = 0
    root: str = DEFAULT_ROOT
    state_dir: Path | None = None
    """Where each node's store lives (``<state_dir>/<node>``); ``None``: a temporary
    directory (on tmpfs when there is one), removed when the fleet stops."""
    prefix: str = "sim"
    probes: tuple[str, ...] = ("camera-hub",)
    start_delay_s: float = 0.0
    failure_rate: float = 0.0
    heartbeat_s: float = 60.0
    keepalive_s: int = 60
    sample_interval_s: float = 10.0
    reconcile_interval_s: float = 30.0
    capabilities_interval_s: float = 300.0
    faultable: int | None = None
    """How many nodes connect through a fault-injecting link (kill, cut, flap act only on
    these); ``None``: every node the file-descriptor limit allows. (The command line's
    default is 0 unless it schedules faults or takes ``--control``.)"""
    faults: tuple[FaultSpec, ...] = ()
    ready_timeout_s: float | None = None
    """``None``: 30 s plus 10 ms per node."""
    log_level: str = "warning"

    def ready_timeout(self) -> float:
        if self.ready_timeout_s is not None:
            return self.ready_timeout_s
        return 30.0 + 0.01 * self.count


def parse_fault(kind: FaultKind, text: str) -> FaultSpec:
    """``N@T``, ``N@T+D`` (cut only) or ``N@T:DOWN/UP`` (flap only)."""
    setting = kind
    match = _FAULT.fullmatch(text.strip())
    forms = {"kill": "N@T", "cut": "N@T or N@T+SECONDS", "flap": "N@T:DOWN/UP"}[kind]
    example = {"kill": "5@30", "cut": "5@30+20", "flap": "3@10:2/8"}[kind]
    if match is None:
        raise SettingsError(setting, f"expected {forms} (e.g. {example}), got {text!r}")
    count, at_s = int(match["n"]), float(match["at"])
    if count < 1:
        raise SettingsError(setting, f"must name at least one node, got {text!r}")
    if match["for"] is not None and kind != "cut":
        raise SettingsError(setting, f"only --cut takes +SECONDS, got {text!r}")
    if match["down"] is not None and kind != "flap":
        raise SettingsError(setting, f"only --flap takes :DOWN/UP, got {text!r}")
    if kind == "flap":
        if match["down"] is None:
            raise SettingsError(setting, f"expected {forms} (e.g. {example}), got {text!r}")
        down_s, up_s = float(match["down"]), float(match["up"])
        if down_s <= 0 or up_s <= 0:
            raise SettingsError(setting, f"down and up must be > 0 seconds, got {text!r}")
        return FaultSpec(kind, count, at_s, down_s=down_s, up_s=up_s)
    for_s = float(match["for"]) if match["for"] is not None else None
    if for_s is not None and for_s <= 0:
        raise SettingsError(setting, f"the cut must last > 0 seconds, got {text!r}")
    return FaultSpec(kind, count, at_s, for_s=for_s)


def _number(setting: str, raw: Any, *, low: float, high: float, integer: bool = False) -> Any:
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise SettingsError(setting, f"must be {kind}, got {raw!r}") from None
    if math.isnan(value) or not low <= value <= high:
        raise SettingsError(setting, f"must be >= {low:g} and <= {high:g}, got {raw!r}")
    return value


def parse_weights(items: list[str]) -> dict[str, int]:
    """``--profile ID`` or ``--profile ID=WEIGHT`` (repeatable, or comma-separated)."""
    weights: dict[str, int] = {}
    for item in (part.strip() for entry in items for part in entry.split(",")):
        if not item:
            continue
        profile_id, sep, weight = item.partition("=")
        if profile_id in weights:
            raise SettingsError("profile", f"{profile_id!r} is named twice")
        weights[profile_id] = (
            _number("profile", weight, low=1, high=1_000, integer=True) if sep else 1
        )
    return weights


def resolve_simulate_settings(flags: Mapping[str, Any]) -> SimulateSettings:
    """The settings from parsed command-line values (strings, lists, ``None`` = default)."""
    values: dict[str, Any] = {}
    for name, (low, high, integer) in NUMBERS.items():
        if flags.get(name) is not None:
            values[name] = _number(name, flags[name], low=low, high=high, integer=integer)
    for name in ("count", "sites"):
        if name not in values:
            raise SettingsError(name, f"is required (--{name})")
    if flags.get("broker") is not None:
        try:
            values["broker"] = BrokerSettings.from_url(str(flags["broker"]))
        except ProtocolError as exc:
            raise SettingsError("broker", exc.reason) from None
    if flags.get("root") is not None:
        try:
            values["root"] = validate_root(str(flags["root"]))
        except ProtocolError as exc:
            raise SettingsError("root", exc.reason) from None
    for name in ("profiles_dir", "state_dir"):
        if flags.get(name) is not None:
            values[name] = Path(str(flags[name])).expanduser()
    if flags.get("prefix") is not None:
        values["prefix"] = str(flags["prefix"])
    if flags.get("profile_weights"):
        values["profile_weights"] = parse_weights(list(flags["profile_weights"]))
    if flags.get("probes") is not None:
        values["probes"] = tuple(
            p.strip() for entry in flags["probes"] for p in entry.split(",") if p.strip()
        )
    if flags.get("assign") is not None:
        if flags["assign"] not in ASSIGNMENTS:
            raise SettingsError("assign", f"must be one of {', '.join(ASSIGNMENTS)}")
        values["assign"] = flags["assign"]
    if flags.get("log_level") is not None:
        if flags["log_level"] not in LOG_LEVELS:
            raise SettingsError("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        values["log_level"] = flags["log_level"]
    faults: list[FaultSpec] = []
    for kind in ("kill", "cut", "flap"):
        faults += [parse_fault(kind, text) for text in flags.get(kind) or ()]
    values["faults"] = tuple(faults)
    faultable = flags.get("faultable")
    if faultable == "all":
        values["faultable"] = values["count"]
    elif faultable is not None:
        values["faultable"] = _number("faultable", faultable, low=0, high=MAX_COUNT, integer=True)
    elif not faults and not flags.get("control"):
        # No faults asked for: every agent connects straight to the broker, so figures
        # measured with the fleet carry no relay hop and no relay CPU.
        values["faultable"] = 0
    settings = SimulateSettings(**values)
    check_settings(settings)
    return settings


def check_settings(settings: SimulateSettings) -> None:
    """What no fleet can do; the plan (:func:`~edgefleet_agent.simulate.plan.check_shape`)
    checks the rest."""
    for name, (low, high, integer) in NUMBERS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if integer and (isinstance(value, bool) or not isinstance(value, int)):
            raise SettingsError(name, f"must be a whole number, got {value!r}")
        if not low <= value <= high:  # NaN fails every comparison
            raise SettingsError(name, f"must be >= {low:g} and <= {high:g}, got {value!r}")
    if settings.sites > settings.count:
        raise SettingsError(
            "sites", f"{settings.sites} sites cannot each hold one of {settings.count} node(s)"
        )
    if settings.faultable is not None and not 0 <= settings.faultable <= settings.count:
        raise SettingsError(
            "faultable", f"must be between 0 and --count ({settings.count}), got "
            f"{settings.faultable}"
        )  # fmt: skip
    needed = faulted_nodes(settings.faults)
    if settings.faultable is not None and needed > settings.faultable:
        raise SettingsError(
            "faultable",
            f"the scheduled faults need {needed} faultable node(s), only "
            f"{settings.faultable} connect through a fault-injecting link",
        )
    if needed > settings.count:
        raise SettingsError(
            "count", f"the scheduled faults need {needed} nodes, the fleet has {settings.count}"
        )


def faulted_nodes(faults: tuple[FaultSpec, ...]) -> int:
    """How many distinct nodes the schedule needs at most (each fault takes fresh ones)."""
    return sum(f.count for f in faults)


def fd_budget(count: int, faultable: int) -> int:
    """File descriptors a fleet of ``count`` nodes needs with ``faultable`` of them on
    fault-injecting links."""
    direct = count - faultable
    return direct * FDS_PER_DIRECT_NODE + faultable * FDS_PER_FAULTABLE_NODE + FD_RESERVE


def faultable_within(count: int, fd_limit: int) -> int:
    """The most nodes that can be faultable under ``fd_limit``."""
    spare = fd_limit - fd_budget(count, 0)
    extra = FDS_PER_FAULTABLE_NODE - FDS_PER_DIRECT_NODE
    return max(0, min(count, spare // extra))
