"""Node records and the pure rules that apply one node message to one record.

Who calls it: :class:`~edgefleet_orchestrator.fleet.registry.Registry` (which owns the
table and the fleet-wide rules: sites, staleness, bursts, flapping); readers import the
types through the registry module. Pure: plain record in, plain result out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from edgefleet_protocol import Capabilities, ComplianceReport, NodeStatus, Reported, Telemetry

from edgefleet_orchestrator.fleet.telemetry import TelemetryView, latency_moved, merge_all

NodeState = Literal["unknown", "online", "offline", "stale"]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """Everything the orchestrator knows about one node right now.

    ``since`` is the agent's own session start (from its status); ``offline_since`` is when
    the node's disconnect grace started counting — when the orchestrator saw it stop being
    online (offline or stale), moved later by a reconnect of the orchestrator or a burst
    hold — ``None`` while it is online. ``online_since`` is when the orchestrator last saw
    it come online. ``last_seen`` is the last message of any kind; ``last_heard`` the last
    live status or telemetry — the clock staleness is measured on. ``flaps`` are the
    recent times it left online; ``flapping`` says there were too many (:mod:`.liveness`).
    """

    node: str
    site: str
    state: NodeState = "unknown"
    session: int | None = None
    since: float | None = None
    offline_since: float | None = None
    last_seen: float = 0.0
    last_heard: float | None = None
    capabilities: Capabilities | None = None
    telemetry: TelemetryView = field(default_factory=TelemetryView)
    reported: Reported | None = None
    cordoned: bool = False
    online_since: float | None = None
    flaps: tuple[float, ...] = ()
    flapping: bool = False
    compliance: ComplianceReport | None = None

    @property
    def schedulable(self) -> bool:
        """Whether new replicas may be placed here."""
        return self.state == "online" and not self.cordoned and not self.flapping


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one message did to the registry.

    ``scheduling_relevant``: state, capabilities or a latency probe (beyond
    :data:`LATENCY_CHANGE_RATIO`) changed — placement should run again.
    ``status_relevant``: the node's reported workloads changed — app status should be
    recomputed. ``rejection`` is set for a message that contradicts its topic or the fleet
    (nothing was recorded); ``ignored`` for a valid message superseded by newer knowledge.
    ``event`` is a human sentence for the audit trail when the node's lifecycle moved.
    """

    changed: bool = False
    scheduling_relevant: bool = False
    status_relevant: bool = False
    rejection: str | None = None
    ignored: str | None = None
    event: str | None = None
    record: NodeRecord | None = None
    broker_event: str | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    """A lifecycle transition found by :meth:`Registry.sweep`."""

    node: str
    site: str
    previous: NodeState
    current: NodeState
    reason: str
    level: Literal["info", "warning"] = "warning"


# -- one function per message kind: plain record in, result out -----------------------------


def moved_to(record: NodeRecord, state: NodeState, now: float) -> NodeRecord:
    """The record in ``state`` (see :func:`_presence`)."""
    offline_since, online_since = _presence(record, state, now)
    return replace(record, state=state, offline_since=offline_since, online_since=online_since)


def _presence(
    record: NodeRecord, state: NodeState, now: float
) -> tuple[float | None, float | None]:
    """(``offline_since``, ``online_since``) of ``record`` moving to ``state``.
    ``offline_since`` keeps the first moment the node left online: a stale node whose will
    arrives later has been gone since it went stale."""
    if state == "online":
        # A first sighting is no return: only a node coming back has to settle.
        back = record.state in ("offline", "stale")
        return None, now if back else record.online_since
    gone_since = now if record.offline_since is None else record.offline_since
    return gone_since, record.online_since


# Each rule below copies the record once, ``last_seen`` included: a copy of a frozen
# record costs as much as the rest of the rule (at 10,000 nodes connecting at once,
# ``dataclasses.replace`` was most of the registry's time with four copies a message).


def apply_status(record: NodeRecord, status: NodeStatus, now: float, live: bool) -> IngestResult:
    where = f"node {record.node} (site {record.site})"
    current = record.session
    if current is not None and status.session < current:
        return IngestResult(
            ignored=f"{status.state} status of {where} from session {status.session} is older"
            f" than its current session {current}",
            record=record,
        )
    new_session = current is None or status.session > current
    state: NodeState = status.state
    if not new_session and state == "online" and record.state == "stale" and not live:
        # A replayed retained "online" of the same session says nothing about now.
        state = "stale"
    offline_since, online_since = record.offline_since, record.online_since
    if state != record.state:
        offline_since, online_since = _presence(record, state, now)
    heard = record.last_heard
    if state == "online" and (live or record.state != "online"):
        heard = now  # live proof, or the start of its grace
    after = replace(
        record,
        session=status.session,
        since=status.since,
        state=state,
        offline_since=offline_since,
        online_since=online_since,
        last_heard=heard,
        last_seen=now,
    )
    moved = after.state != record.state
    event = None
    if moved or (new_session and current is not None):
        event = _status_event(where, record, after)
    return IngestResult(
        changed=moved or new_session or after.since != record.since,
        scheduling_relevant=moved,
        event=event,
        record=after,
    )


def joined(first: str | None, second: str | None) -> str | None:
    if first is None or second is None:
        return first or second
    return f"{first}; {second}"


def _status_event(where: str, before: NodeRecord, after: NodeRecord) -> str:
    if before.session is not None and after.session != before.session:
        return (
            f"{where} started a new session {after.session} (was {before.session}) and is"
            f" {after.state}"
        )
    if before.state == "stale" and after.state == "online":
        return f"{where} is heard again after being stale (session {after.session})"
    return f"{where} is {after.state} (session {after.session})"


def apply_telemetry(
    record: NodeRecord, telemetry: Sequence[Telemetry], now: float, live: bool
) -> IngestResult:
    """Telemetry messages of one node, in arrival order (the service hands over a burst
    at once): merged one after the other, as they would be one by one, but the record is
    replaced once. Only the messages from the last ``full`` one on can matter."""
    view = merge_all(record.telemetry, telemetry)
    event = None
    if live:
        state, offline_since, online_since = record.state, record.offline_since, record.online_since
        if record.state == "stale":
            state = "online"
            offline_since, online_since = _presence(record, state, now)
            event = f"node {record.node} (site {record.site}) is heard again after being stale"
        after = replace(
            record,
            telemetry=view,
            last_heard=now,
            last_seen=now,
            state=state,
            offline_since=offline_since,
            online_since=online_since,
        )
    else:
        after = replace(record, telemetry=view, last_seen=now)
    moved = after.state != record.state
    return IngestResult(
        changed=moved or view != record.telemetry,
        scheduling_relevant=moved or latency_moved(record.telemetry.latency_ms, view.latency_ms),
        event=event,
        record=after,
    )


def apply_reported(record: NodeRecord, reported: Reported, now: float) -> IngestResult:
    if record.session is not None and reported.session < record.session:
        return IngestResult(
            ignored=f"report of node {record.node} (site {record.site}) from session"
            f" {reported.session} is older than its current session {record.session}",
            record=record,
        )
    changed = reported != record.reported
    return IngestResult(
        changed=changed,
        status_relevant=changed,
        record=replace(record, reported=reported, last_seen=now),
    )
