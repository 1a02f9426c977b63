"""Admission of a desired document: decide, purely, whether the agent takes it.

Called by the agent for every message on its ``desired`` topic, before anything is stored
or touched. The checks, in order: size and JSON and schema (the protocol codec), the node
(and site) it names, the runtimes its workloads need, then its generation against the one
the agent holds. A rejected document changes nothing; the agent reports the reason as an
event and keeps running what it runs.

The agent does not recompute ``spec_hash``: a newer orchestrator may add a spec field this
agent ignores, and the hash the orchestrator chose is the one ``reported`` must echo back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from edgefleet_protocol import Desired, ProtocolError, decode
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES
from edgefleet_protocol.events import DESIRED_ACCEPTED, DESIRED_REJECTED, DESIRED_STALE


@dataclass(frozen=True, slots=True)
class Accept:
    """A higher generation: persist it, then converge to it."""

    desired: Desired


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The generation the agent already holds (a retained replay after reconnect)."""

    generation: int


@dataclass(frozen=True, slots=True)
class Stale:
    """An older generation than the one held: ignored, with an event."""

    generation: int
    current: int


@dataclass(frozen=True, slots=True)
class Reject:
    """Not acceptable at all: ``field`` and ``reason`` say why, for the event."""

    field: str
    reason: str


Admission = Accept | Unchanged | Stale | Reject


def admit(
    payload: bytes,
    *,
    node: str,
    site: str,
    runtimes: Collection[str],
    current_generation: int | None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Admission:
    try:
        desired = decode(Desired, payload, max_bytes=max_bytes)
    except ProtocolError as exc:
        return Reject(exc.field, exc.reason)
    if desired.node != node:
        return Reject("node", f"document is for node {desired.node!r}; this is node {node!r}")
    if desired.site is not None and desired.site != site:
        return Reject("site", f"document is for site {desired.site!r}; this node is in {site!r}")
    for i, workload in enumerate(desired.workloads):
        if workload.spec.runtime not in runtimes:
            enabled = ", ".join(sorted(runtimes)) or "none"
            return Reject(
                f"workloads.{i}.spec.runtime",
                f"workload {workload.name} needs runtime {workload.spec.runtime!r}, "
                f"which this agent does not run (enabled: {enabled})",
            )
    if current_generation is None or desired.generation > current_generation:
        return Accept(desired)
    if desired.generation == current_generation:
        return Unchanged(desired.generation)
    return Stale(desired.generation, current_generation)


@dataclass(frozen=True, slots=True)
class Notice:
    """The node event a verdict raises (``Unchanged`` raises none: replays are normal)."""

    level: Literal["info", "warning"]
    kind: str
    message: str
    details: dict[str, object] = field(default_factory=dict)


def notice_for(verdict: Admission) -> Notice | None:
    """What the agent tells the fleet about a verdict, on its ``events`` topic."""
    match verdict:
        case Reject(field=where, reason=reason):
            message = f"desired document rejected, workloads left as they are: {where}: {reason}"
            return Notice(
                "warning", DESIRED_REJECTED.name, message, {"field": where, "reason": reason}
            )
        case Stale(generation=generation, current=current):
            message = f"ignored desired generation {generation}: already at {current}"
            return Notice(
                "warning",
                DESIRED_STALE.name,
                message,
                {"generation": generation, "current": current},
            )
        case Accept(desired=desired):
            message = (
                f"accepted desired generation {desired.generation} with"
                f" {len(desired.workloads)} workload(s)"
            )
            return Notice(
                "info", DESIRED_ACCEPTED.name, message, {"generation": desired.generation}
            )
    return None
