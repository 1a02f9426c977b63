"""Validated identifiers for sites, nodes, apps, services and workloads.

Identifiers become MQTT topic levels, container names and file names, so they are held to
one conservative shape: ``[a-z0-9][a-z0-9-]{0,62}``. That rules out the MQTT wildcards
(``+``, ``#``), the level separator (``/``), empty strings and anything over 63 characters
— the ways a hostile or careless id could subscribe to, or publish over, someone else's
topics.
"""

from __future__ import annotations

import re
from typing import Annotated, NewType

from pydantic import AfterValidator

from edgefleet_protocol.errors import ProtocolError

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
ID_RULE = "1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"

SiteId = NewType("SiteId", str)
NodeId = NewType("NodeId", str)
AppId = NewType("AppId", str)
ServiceId = NewType("ServiceId", str)
WorkloadId = NewType("WorkloadId", str)


def validate_id(value: object, *, kind: str = "id") -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`ProtocolError`."""
    if not isinstance(value, str):
        raise ProtocolError(kind, f"must be a string, got {type(value).__name__}")
    if not value:
        raise ProtocolError(kind, "must not be empty")
    if len(value) > 63:
        raise ProtocolError(kind, f"is {len(value)} characters long; at most 63 allowed")
    if ID_PATTERN.fullmatch(value) is None:
        # Not str.islower()/isdigit(): those accept 'é' and '²', which the pattern refuses.
        bad = sorted({ch for ch in value if ch not in _ID_CHARS})
        detail = f" (found {', '.join(repr(c) for c in bad)})" if bad else ""
        raise ProtocolError(kind, f"{value!r} is not a valid {kind}: {ID_RULE}{detail}")
    return value


def site_id(value: object) -> SiteId:
    return SiteId(validate_id(value, kind="site"))


def node_id(value: object) -> NodeId:
    return NodeId(validate_id(value, kind="node"))


def app_id(value: object) -> AppId:
    return AppId(validate_id(value, kind="app"))


def service_id(value: object) -> ServiceId:
    return ServiceId(validate_id(value, kind="service"))


def workload_id(value: object) -> WorkloadId:
    return WorkloadId(validate_id(value, kind="workload"))


_KNOWN_VALID: set[str] = set()
KNOWN_VALID_MAX = 65_536
"""Ids already found valid, so the inbound path (every telemetry message names its node
and site) checks each fleet id once; cleared when full, so a flood of new ids costs only
the check itself. Only valid ids are kept: a refusal is recomputed, with its reason."""


def _pydantic_id(value: str) -> str:
    # Inside a model the field path comes from pydantic, so only the reason matters here.
    if value in _KNOWN_VALID and type(value) is str:
        return value
    try:
        validate_id(value)
    except ProtocolError as exc:
        raise ValueError(exc.reason) from None
    if len(_KNOWN_VALID) >= KNOWN_VALID_MAX:
        _KNOWN_VALID.clear()
    _KNOWN_VALID.add(value)
    return value


Identifier = Annotated[str, AfterValidator(_pydantic_id)]
"""A model field type for any identifier."""
