"""How large each node's desired document would be, and which would be too large to send.

Pure. Who calls it: the ``deploy`` and ``scale`` handlers, before they accept a change
(:func:`oversized_for`), and the service before it publishes any desired document
(:func:`too_large`). Why: a deploy whose per-node document exceeded the broker's packet
limit (100 KB of ``env`` x 15 replicas on one node) made mosquitto drop the orchestrator,
which reconnected and republished in a loop, across restarts; documents between the agent's
256 KiB limit and the broker's were published and refused by the agent forever (issue #12).

The limit is the agent's payload limit, :data:`~edgefleet_protocol.codec.MAX_PAYLOAD_BYTES`
(256 KiB, well under the production broker's 1 MiB packet limit). A change is refused when
a document it would produce comes within :data:`HEADROOM_BYTES` of it: the trial pass
numbers generations from 1 and signs nothing, so the real document is a little larger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from edgefleet_protocol import Desired, encode
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.reconcile.fleet_pass import FleetView
from edgefleet_orchestrator.reconcile.isolation import reconcile_isolating

DOCUMENT_LIMIT_BYTES = MAX_PAYLOAD_BYTES
HEADROOM_BYTES = 1024
"""Room for a real generation number, timestamps and the signature."""


@dataclass(frozen=True, slots=True)
class Oversize:
    """A node whose document would be too large: its size, and how much of it is ``app``'s
    (``replicas`` of about ``replica_bytes`` each)."""

    node: str
    bytes: int
    replicas: int
    replica_bytes: int


def document_bytes(document: Desired) -> int:
    return len(encode(document))


def oversized_for(
    app: str,
    apps: Mapping[str, AppManifest],
    view: FleetView,
    *,
    limit: int = DOCUMENT_LIMIT_BYTES - HEADROOM_BYTES,
) -> list[Oversize]:
    """The documents a trial pass with ``apps`` would produce that hold a replica of ``app``
    and exceed ``limit`` bytes, largest first."""
    trial = replace(view, apps=apps, published={})
    result, _ = reconcile_isolating(trial, {})
    found = []
    for change in result.documents:
        mine = [w for w in change.document.workloads if w.app == app]
        if not mine:
            continue
        size = document_bytes(change.document)
        if size > limit:
            one = len(encode(mine[0]))
            found.append(Oversize(change.node, size, len(mine), one))
    return sorted(found, key=lambda o: (-o.bytes, o.node))


def too_large(payload: bytes, *, limit: int = DOCUMENT_LIMIT_BYTES) -> bool:
    """Whether a desired document's bytes are over what an agent accepts."""
    return len(payload) > limit


__all__ = [
    "DOCUMENT_LIMIT_BYTES",
    "HEADROOM_BYTES",
    "Oversize",
    "document_bytes",
    "oversized_for",
    "too_large",
]
