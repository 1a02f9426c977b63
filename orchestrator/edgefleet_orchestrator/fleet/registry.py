"""The fleet registry: the orchestrator's live view of every node, built from node messages.

Who calls it: the orchestrator's service shell feeds it every validated node message
(status, capabilities, telemetry, reported) with the (site, node) of the topic it arrived
on, calls :meth:`Registry.sweep` on its timer, and marks the fleet dirty when a result says
something scheduling-relevant changed. Placement reads :attr:`Registry.nodes`.

Pure: no I/O, no clock of its own (``now`` is passed in), never raises on bad input — a
message that contradicts its topic or the fleet comes back as a rejection with its reason.

Invariants:

- Records are frozen and replaced on change, so a reader's :class:`NodeRecord` never
  changes under it.
- A node id belongs to one site. A message for a known node under another site is refused
  until the node is forgotten (node ids are unique fleet-wide; a silent move would strand
  its replicas' assignments under the old site).
- Sessions only move forward. A status or report from a session older than the node's
  current one is ignored — that is how a late will ("offline") of a previous agent run is
  told apart from the current run going away.
- Liveness comes only from live (non-retained) status and telemetry. Retained messages are
  replayed by the broker on every (re)subscribe, long after the agent that wrote them may
  have died, so they may describe a node but never prove it alive.

Node states: ``unknown`` (seen, but no status yet: not schedulable), ``online``,
``offline`` (the agent said so, or its will did) and ``stale`` (online, but nothing heard
for ``stale_after_s``). Cordoning is a separate flag that the store keeps across restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from edgefleet_protocol import Capabilities, NodeStatus, Reported, Telemetry
from edgefleet_protocol.topics import TopicKind
from pydantic import BaseModel

from edgefleet_orchestrator.fleet.telemetry import TelemetryView, latency_moved, merge_telemetry

NodeState = Literal["unknown", "online", "offline", "stale"]

DEFAULT_STALE_AFTER_S = 180.0
"""Three missed heartbeats at the agent's default 60 s heartbeat. A silently cut link is
noticed sooner by the broker (keepalive expiry publishes the agent's will); staleness is
the backstop for an agent that hangs with its connection still up."""

_MODEL_FOR_KIND: dict[TopicKind, type[BaseModel]] = {
    TopicKind.NODE_STATUS: NodeStatus,
    TopicKind.NODE_CAPABILITIES: Capabilities,
    TopicKind.NODE_TELEMETRY: Telemetry,
    TopicKind.NODE_REPORTED: Reported,
}


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """Everything the orchestrator knows about one node right now.

    ``since`` is the agent's own session start (from its status); ``offline_since`` is when
    the orchestrator saw the node stop being online (offline or stale), ``None`` while it
    is online. ``last_seen`` is the last message of any kind; ``last_heard`` the last live
    status or telemetry — the clock staleness is measured on.
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

    @property
    def schedulable(self) -> bool:
        """Whether new replicas may be placed here."""
        return self.state == "online" and not self.cordoned


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


@dataclass(frozen=True, slots=True)
class StateChange:
    """A lifecycle transition found by :meth:`Registry.sweep`."""

    node: str
    site: str
    previous: NodeState
    current: NodeState
    reason: str


class Registry:
    """The live node table. Mutable as a whole; every record in it is frozen."""

    def __init__(
        self, *, stale_after_s: float = DEFAULT_STALE_AFTER_S, cordoned: Iterable[str] = ()
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self._nodes: dict[str, NodeRecord] = {}
        # Cordons outlive records: they are loaded from the store before nodes reappear and
        # kept across forget(), mirroring the store.
        self._cordoned: set[str] = set(cordoned)
        self._view = MappingProxyType(self._nodes)

    @property
    def nodes(self) -> Mapping[str, NodeRecord]:
        """Read-only view of every known node, by node id."""
        return self._view

    def ingest(
        self,
        kind: TopicKind,
        site: str,
        node: str,
        model: BaseModel,
        now: float,
        *,
        retained: bool = False,
    ) -> IngestResult:
        """Apply one validated node message that arrived on ``site``/``node``'s topic.

        ``retained`` is the MQTT retain flag of the delivery: retained deliveries update
        what the registry knows but never count as a sign of life.
        """
        rejection = self._rejection(kind, site, node, model)
        if rejection is not None:
            return IngestResult(rejection=rejection, record=self._nodes.get(node))
        existing = self._nodes.get(node)
        before = existing or NodeRecord(node=node, site=site, cordoned=node in self._cordoned)
        live = not retained
        if isinstance(model, NodeStatus):
            result = _apply_status(before, model, now, live)
        elif isinstance(model, Telemetry):
            result = _apply_telemetry(before, model, now, live)
        elif isinstance(model, Capabilities):
            changed = model != before.capabilities
            result = IngestResult(
                changed=changed,
                scheduling_relevant=changed,
                record=replace(before, capabilities=model),
            )
        else:
            assert isinstance(model, Reported)  # guaranteed by _rejection
            result = _apply_reported(before, model)
        after = replace(result.record or before, last_seen=now)
        self._nodes[node] = after
        if existing is None:  # a first sighting is a change whatever the message said
            return replace(result, changed=True, record=after)
        return replace(result, record=after)

    def sweep(self, now: float) -> list[StateChange]:
        """Mark online nodes stale when nothing live was heard for ``stale_after_s``."""
        changes: list[StateChange] = []
        for node, record in sorted(self._nodes.items()):
            heard = record.last_heard if record.last_heard is not None else record.last_seen
            silent_for = now - heard
            if record.state != "online" or silent_for <= self.stale_after_s:
                continue
            self._nodes[node] = _moved(record, "stale", now)
            changes.append(
                StateChange(
                    node=node,
                    site=record.site,
                    previous="online",
                    current="stale",
                    reason=f"node {node} (site {record.site}) is stale: nothing heard for"
                    f" {silent_for:.0f} s (limit {self.stale_after_s:.0f} s)",
                )
            )
        return changes

    def set_cordon(self, node: str, cordoned: bool) -> bool:
        """Set the node's cordon flag (held even for nodes not seen yet); return whether it
        changed. A change on a known node is scheduling-relevant."""
        if (node in self._cordoned) == cordoned:
            return False
        if cordoned:
            self._cordoned.add(node)
        else:
            self._cordoned.discard(node)
        record = self._nodes.get(node)
        if record is not None:
            self._nodes[node] = replace(record, cordoned=cordoned)
        return True

    def forget(self, node: str) -> NodeRecord | None:
        """Drop the node's live record (its cordon flag stays); return what was dropped."""
        return self._nodes.pop(node, None)

    def _rejection(self, kind: TopicKind, site: str, node: str, model: BaseModel) -> str | None:
        expected = _MODEL_FOR_KIND.get(kind)
        if expected is None:
            return f"{kind.value} messages are not registry input"
        if not isinstance(model, expected):
            return (
                f"a {kind.value} topic needs a {expected.__name__} payload,"
                f" got {type(model).__name__}"
            )
        payload_node = getattr(model, "node", None)
        payload_site = getattr(model, "site", None)
        if payload_node != node:
            return (
                f"payload names node {payload_node!r} but arrived on the {kind.value} topic of"
                f" node {node!r}"
            )
        if payload_site is not None and payload_site != site:
            return (
                f"payload names site {payload_site!r} but arrived on the {kind.value} topic of"
                f" site {site!r}"
            )
        known = self._nodes.get(node)
        if known is not None and known.site != site:
            return (
                f"node {node!r} is already registered under site {known.site!r}, not {site!r}:"
                " node ids are unique fleet-wide (forget the node first if it really moved)"
            )
        return None


# -- one function per message kind: plain record in, result out -----------------------------


def _moved(record: NodeRecord, state: NodeState, now: float) -> NodeRecord:
    """The record in ``state``. ``offline_since`` keeps the first moment the node left
    online: a stale node whose will arrives later has been gone since it went stale."""
    if state == "online":
        return replace(record, state=state, offline_since=None)
    gone_since = now if record.offline_since is None else record.offline_since
    return replace(record, state=state, offline_since=gone_since)


def _apply_status(record: NodeRecord, status: NodeStatus, now: float, live: bool) -> IngestResult:
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
    after = replace(record, session=status.session, since=status.since)
    if state != record.state:
        after = _moved(after, state, now)
    if state == "online" and (live or record.state != "online"):
        after = replace(after, last_heard=now)  # live proof, or the start of its grace
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


def _status_event(where: str, before: NodeRecord, after: NodeRecord) -> str:
    if before.session is not None and after.session != before.session:
        return (
            f"{where} started a new session {after.session} (was {before.session}) and is"
            f" {after.state}"
        )
    if before.state == "stale" and after.state == "online":
        return f"{where} is heard again after being stale (session {after.session})"
    return f"{where} is {after.state} (session {after.session})"


def _apply_telemetry(
    record: NodeRecord, telemetry: Telemetry, now: float, live: bool
) -> IngestResult:
    view = merge_telemetry(record.telemetry, telemetry)
    after = replace(record, telemetry=view)
    event = None
    if live:
        after = replace(after, last_heard=now)
        if record.state == "stale":
            after = _moved(after, "online", now)
            event = f"node {record.node} (site {record.site}) is heard again after being stale"
    moved = after.state != record.state
    return IngestResult(
        changed=moved or view != record.telemetry,
        scheduling_relevant=moved or latency_moved(record.telemetry.latency_ms, view.latency_ms),
        event=event,
        record=after,
    )


def _apply_reported(record: NodeRecord, reported: Reported) -> IngestResult:
    if record.session is not None and reported.session < record.session:
        return IngestResult(
            ignored=f"report of node {record.node} (site {record.site}) from session"
            f" {reported.session} is older than its current session {record.session}",
            record=record,
        )
    changed = reported != record.reported
    return IngestResult(
        changed=changed, status_relevant=changed, record=replace(record, reported=reported)
    )
