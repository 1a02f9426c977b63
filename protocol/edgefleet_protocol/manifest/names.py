"""Replica names: ``<app>-<index>`` or ``<app>-<node>``, always a valid identifier."""

from __future__ import annotations

import hashlib

from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id
from edgefleet_protocol.manifest.rules import (
    DAEMON_HASH_DIGITS,
    MAX_ID_LENGTH,
    Mode,
)


def longest_replica_name(app: str, mode: Mode, replicas: int) -> str:
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
