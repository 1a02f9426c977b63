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

from edgefleet_protocol import Desired, DesiredWorkload, encode, spec_hash
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.replicas import replica_spec
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView
from edgefleet_orchestrator.reconcile.isolation import reconcile_isolating

DOCUMENT_LIMIT_BYTES = MAX_PAYLOAD_BYTES
HEADROOM_BYTES = 1024
"""Room for a real generation number, timestamps and the signature."""

ENVELOPE_BYTES = 1024
"""More than a document's fields besides its workloads (node and site at most 63
characters each, generation, ``issued_at``)."""
ENTRY_SLACK_BYTES = 64
"""More than a workload entry can differ from the one :func:`size_bound` encodes: a
replica's own limits (sized apps) and the list's comma."""


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
    and exceed ``limit`` bytes, largest first. None, without a trial pass, when
    :func:`size_bound` says no document can come near ``limit``."""
    bound = size_bound(apps, view)
    if bound is not None and bound <= limit // 2:
        return []
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


def size_bound(apps: Mapping[str, AppManifest], view: FleetView) -> int | None:
    """An upper bound on every node's document in a pass over ``apps`` (``None`` while a
    move, drain or rollout is under way: copies and rollout guards are not bounded here).

    Why: the trial pass of :func:`oversized_for` builds every node's document, a second
    full pass over the fleet before a deploy is accepted (2.2 s of a profiled 15 s window
    of a 10,000-node deploy). A node holds at most one replica of a daemon app and at most all
    replicas of any other (the autoscaler's ``max`` for an autoscaled one), each an entry
    no larger than one with a 63-character name (the longest identifier) plus
    :data:`ENTRY_SLACK_BYTES`; so the sum over apps bounds any document."""
    if view.control.retiring or view.control.drains or view.rollouts:
        return None
    total = ENVELOPE_BYTES
    for app in apps.values():
        if app.is_daemon:
            count = 1
        else:
            count = app.replicas or 0
            if app.autoscale is not None:
                count = max(count, app.autoscale.max)
        if count == 0:
            continue
        resources = app.workload.resources
        spec = replica_spec(app, resources.cpu, resources.memory_mb)
        entry = DesiredWorkload(name="x" * 63, app=app.name, spec=spec, spec_hash=spec_hash(spec))
        total += count * (len(encode(entry)) + ENTRY_SLACK_BYTES)
    return total


def too_large(payload: bytes, *, limit: int = DOCUMENT_LIMIT_BYTES) -> bool:
    """Whether a desired document's bytes are over what an agent accepts."""
    return len(payload) > limit


__all__ = [
    "DOCUMENT_LIMIT_BYTES",
    "HEADROOM_BYTES",
    "Oversize",
    "document_bytes",
    "oversized_for",
    "size_bound",
    "too_large",
]
