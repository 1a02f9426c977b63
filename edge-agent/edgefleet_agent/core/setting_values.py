"""Setting value parsers: each takes a raw value (text from a flag or the environment, a
native value from a config file) and returns it checked, or raises ``ValueError``.

Pure, so every rule and message is unit-tested; :mod:`edgefleet_agent.settings` maps each
setting name to one of these and wraps the ``ValueError`` into a ``SettingsError`` that
names the setting and where its value came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgefleet_protocol import ProtocolError, validate_id
from edgefleet_protocol.scrape import Address, AddressError, parse_address
from edgefleet_protocol.topics import validate_root

from edgefleet_agent.core.telemetry import Deadbands

_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")
_PROBE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_SENSOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    host: str
    port: int


Parser = Callable[[Any], Any]


def plain_text(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"must be text, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def identifier(kind: str) -> Parser:
    def parse(raw: Any) -> str:
        try:
            return validate_id(plain_text(raw), kind=kind)
        except ProtocolError as exc:
            raise ValueError(exc.reason) from None

    return parse


def number(*, low: float, high: float, integer: bool = False, low_open: bool = False) -> Parser:
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


def choice(choices: tuple[str, ...]) -> Parser:
    def parse(raw: Any) -> str:
        text = plain_text(raw).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return text

    return parse


def items(raw: Any) -> list[str]:
    """A list from a file list, repeated flags, or a comma-separated env value."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        return [plain_text(item) for item in raw]
    raise ValueError(f"must be a list, got {type(raw).__name__}")


def pairs(raw: Any) -> dict[str, str]:
    """A mapping from a file mapping, or ``key=value`` items."""
    if isinstance(raw, dict):
        return {str(k): plain_text(v) for k, v in raw.items()}
    pairs: dict[str, str] = {}
    for item in items(raw):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def labels(raw: Any) -> dict[str, str]:
    labels = pairs(raw)
    for key, value in labels.items():
        if _LABEL_KEY.fullmatch(key) is None:
            raise ValueError(f"label key {key!r} must match {_LABEL_KEY.pattern}")
        if len(value) > 63 or not value.isprintable():
            raise ValueError(f"label {key!r}: value must be 0-63 printable characters")
    return labels


def probes(raw: Any) -> dict[str, ProbeTarget]:
    probes: dict[str, ProbeTarget] = {}
    for name, target in pairs(raw).items():
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


def sensors(raw: Any) -> tuple[str, ...]:
    sensors = items(raw)
    for sensor in sensors:
        if _SENSOR.fullmatch(sensor) is None:
            raise ValueError(f"sensor {sensor!r} must match {_SENSOR.pattern}")
    return tuple(dict.fromkeys(sensors))


def addresses(raw: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items(raw)))


def deadbands(raw: Any) -> Deadbands:
    bands = Deadbands()
    positive = number(low=0, high=1e9)
    for key, value in pairs(raw).items():
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


def root(raw: Any) -> str:
    try:
        return validate_root(plain_text(raw))
    except ProtocolError as exc:
        raise ValueError(exc.reason) from None


def path(raw: Any) -> Path:
    return Path(plain_text(raw)).expanduser()


def optional_text(raw: Any) -> str:
    text = plain_text(raw)
    if len(text) > 64:
        raise ValueError("must be at most 64 characters")
    return text


def loopback_address(raw: Any) -> Address:
    """``HOST:PORT`` on loopback only: a gateway's metrics endpoint has no authentication,
    so it is never offered to the network (a local Prometheus agent or exporter reads it)."""
    try:
        address = parse_address(plain_text(raw))
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    if not address.loopback:
        raise ValueError(f"{address} is not a loopback address (use 127.0.0.1:PORT or [::1]:PORT)")
    return address


def port_range(raw: Any) -> tuple[int, int]:
    """``LOW-HIGH``: the ports the local proxies may take (docs/protocol.md)."""
    text = plain_text(raw)
    low_text, sep, high_text = text.partition("-")
    if not sep or not low_text.isdigit() or not high_text.isdigit():
        raise ValueError(f"expected LOW-HIGH such as 17000-17999, got {text!r}")
    low, high = int(low_text), int(high_text)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"need 1 <= LOW <= HIGH <= 65535, got {text!r}")
    return low, high
