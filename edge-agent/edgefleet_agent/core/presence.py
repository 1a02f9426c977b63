"""When the agent says hello to the orchestrator: a pure decision on ``orchestrator/status``.

A newly started orchestrator knows nothing live about this node (telemetry is not retained,
and a retained ``online`` proves nothing). When ``orchestrator/status`` turns ``online`` with
a ``since`` the agent has not seen, it republishes a live status and a full telemetry
message. A replayed ``online`` with the same ``since`` (a broker redelivery, a reconnect)
changes nothing, and the first status after the agent's own connect needs no hello because
the connect already republished everything.
"""

from __future__ import annotations

from edgefleet_protocol import OrchestratorStatus


def hello_due(
    status: OrchestratorStatus, seen_since: float | None, *, busy: bool
) -> tuple[bool, float | None]:
    """Return (say hello now?, the ``since`` to remember). ``busy``: a hello is under way."""
    if status.state != "online" or status.since == seen_since:
        return False, seen_since
    return seen_since is not None and not busy, status.since
