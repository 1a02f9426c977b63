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
for ``stale_after_s``). Cordoning is a separate flag that the store keeps across restarts;
``flapping`` another, kept only in memory (:mod:`.liveness`).

- Grace is measured only while the orchestrator can see the broker: :meth:`Registry.resume`
  (called on the orchestrator's own reconnect) restarts every offline clock, and a burst
  of wills (:mod:`.liveness`) starts its nodes' clocks only after a hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from edgefleet_protocol import Capabilities, ComplianceReport, NodeStatus, Reported, Telemetry
from edgefleet_protocol.topics import TopicKind
from pydantic import BaseModel

from edgefleet_orchestrator.fleet.liveness import (
    BurstDetector,
    BurstPolicy,
    FlapPolicy,
    recent_flaps,
)
from edgefleet_orchestrator.fleet.records import (
    IngestResult,
    NodeRecord,
    NodeState,
    StateChange,
    apply_reported,
    apply_status,
    apply_telemetry,
    joined,
    moved_to,
)

__all__ = [
    "DEFAULT_STALE_AFTER_S",
    "IngestResult",
    "NodeRecord",
    "NodeState",
    "Registry",
    "StateChange",
]

DEFAULT_STALE_AFTER_S = 180.0
"""Three missed heartbeats at the agent's default 60 s heartbeat. A silently cut link is
noticed sooner by the broker (keepalive expiry publishes the agent's will); staleness is
the backstop for an agent that hangs with its connection still up."""

_MODEL_FOR_KIND: dict[TopicKind, type[BaseModel]] = {
    TopicKind.NODE_STATUS: NodeStatus,
    TopicKind.NODE_CAPABILITIES: Capabilities,
    TopicKind.NODE_TELEMETRY: Telemetry,
    TopicKind.NODE_REPORTED: Reported,
    TopicKind.NODE_COMPLIANCE: ComplianceReport,
}


class Registry:
    """The live node table. Mutable as a whole; every record in it is frozen."""

    def __init__(
        self,
        *,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        cordoned: Iterable[str] = (),
        burst: BurstPolicy | None = None,
        flap: FlapPolicy | None = None,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self.flap = flap or FlapPolicy()
        self._bursts = BurstDetector(burst or BurstPolicy())
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
            result = apply_status(before, model, now, live)
        elif isinstance(model, Telemetry):
            result = apply_telemetry(before, (model,), now, live)
        elif isinstance(model, Capabilities):
            changed = model != before.capabilities
            result = IngestResult(
                changed=changed,
                scheduling_relevant=changed,
                record=replace(before, capabilities=model, last_seen=now),
            )
        elif isinstance(model, ComplianceReport):
            changed = model.model_copy(update={"ts": 0}) != (
                before.compliance.model_copy(update={"ts": 0}) if before.compliance else None
            )
            fresh = replace(before, compliance=model, last_seen=now)
            result = IngestResult(changed=changed, status_relevant=changed, record=fresh)
        else:
            assert isinstance(model, Reported)  # guaranteed by _rejection
            result = apply_reported(before, model, now)
        return self._commit(node, existing, before, result, now, live)

    def ingest_telemetry(
        self, site: str, node: str, messages: Sequence[Telemetry], now: float
    ) -> IngestResult:
        """Live telemetry messages of one node, in arrival order, each of which
        :meth:`rejection` passed: the same record as :meth:`ingest` one by one (merged in
        order), one update. The service coalesces a burst this way."""
        existing = self._nodes.get(node)
        before = existing or NodeRecord(node=node, site=site, cordoned=node in self._cordoned)
        result = apply_telemetry(before, messages, now, True)
        return self._commit(node, existing, before, result, now, True)

    def rejection(self, kind: TopicKind, site: str, node: str, model: BaseModel) -> str | None:
        """Why ``model`` on this node topic is refused (see :meth:`ingest`), or ``None``."""
        return self._rejection(kind, site, node, model)

    def _commit(
        self,
        node: str,
        existing: NodeRecord | None,
        before: NodeRecord,
        result: IngestResult,
        now: float,
        live: bool,
    ) -> IngestResult:
        after = result.record or before
        if after.last_seen != now:  # the rules set it; an ignored message comes back as is
            after = replace(after, last_seen=now)
        left_online = live and before.state == "online" and after.state != "online"
        if left_online:
            after, flap_event = self._left_online(after, now)
            result = replace(result, event=joined(result.event, flap_event))
        self._nodes[node] = after
        if left_online:
            burst = self._burst(node, now)
            after = self._nodes[node]
            result = replace(result, broker_event=burst)
        # A first sighting is a change whatever the message said. The result is copied
        # only when it does not already say so (most messages: a copy saved).
        changed = result.changed or existing is None
        if result.record is not after or result.changed != changed:
            result = replace(result, changed=changed, record=after)
        return result

    def resume(self, now: float) -> int:
        """The orchestrator sees the broker again after not seeing it: whatever happened
        meanwhile was invisible to it, so every offline node's grace starts again now (a
        burst hold further ahead is kept) and every online node counts as heard now.
        Returns the number of offline nodes whose clock restarted."""
        restarted = 0
        for node, record in self._nodes.items():
            if record.state == "online":
                self._nodes[node] = replace(record, last_heard=now)
                continue
            since = record.offline_since
            self._nodes[node] = replace(record, offline_since=max(since or now, now))
            restarted += 1
        return restarted

    def _left_online(self, record: NodeRecord, now: float) -> tuple[NodeRecord, str | None]:
        """Count a flap; say so when it makes the node flapping."""
        flaps = (*recent_flaps(record.flaps, now, self.flap.window_s), now)
        flapping = len(flaps) > self.flap.max_flaps
        after = replace(record, flaps=flaps, flapping=flapping)
        if flapping and not record.flapping:
            return after, (
                f"node {record.node} (site {record.site}) is flapping: it left online"
                f" {len(flaps)} times in {self.flap.window_s:.0f} s; no new replicas go there"
                f" until it has been steady for {self.flap.window_s:.0f} s"
            )
        return after, None

    def _burst(self, node: str, now: float) -> str | None:
        """A burst of wills is a broker event: hold its nodes' grace, count no flaps."""
        nodes = self._bursts.went_offline(node, now)
        if not nodes:
            return None
        policy = self._bursts.policy
        hold_until = now + policy.hold_s
        for name in nodes:
            record = self._nodes.get(name)
            if record is None or record.state == "online":
                continue
            flaps = tuple(t for t in record.flaps if t <= now - policy.window_s)
            self._nodes[name] = replace(
                record,
                offline_since=max(record.offline_since or hold_until, hold_until),
                flaps=flaps,
                flapping=record.flapping and len(flaps) > self.flap.max_flaps,
            )
        if len(nodes) != policy.nodes:
            return None  # the burst grows: announced once, when it was first seen
        return (
            f"broker event: {len(nodes)} nodes went offline within {policy.window_s:g} s"
            f" ({', '.join(nodes)}); their disconnect grace starts {policy.hold_s:g} s"
            " later, and nothing counts as a flap"
        )

    def sweep(self, now: float) -> list[StateChange]:
        """Mark online nodes stale when nothing live was heard for ``stale_after_s``."""
        changes: list[StateChange] = []
        # Unsorted (replacing a value while iterating is safe); the changes are sorted at
        # the end: sorting 10,000 nodes on every tick cost more than the sweep itself.
        for node, record in self._nodes.items():
            heard = record.last_heard if record.last_heard is not None else record.last_seen
            silent_for = now - heard
            if record.flapping and not recent_flaps(record.flaps, now, self.flap.window_s):
                record = self._nodes[node] = replace(record, flapping=False, flaps=())
                changes.append(
                    StateChange(
                        node=node,
                        site=record.site,
                        previous=record.state,
                        current=record.state,
                        reason=f"node {node} (site {record.site}) is no longer flapping",
                        level="info",
                    )
                )
            if record.state != "online" or silent_for <= self.stale_after_s:
                continue
            stale, _ = self._left_online(moved_to(record, "stale", now), now)
            self._nodes[node] = stale
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
        return sorted(changes, key=lambda c: c.node)  # stable: a node's own order stays

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
