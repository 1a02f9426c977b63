"""The catalogue of event kinds: every ``kind`` the agent and the orchestrator publish on
their ``events`` topics, who publishes it and which ``details`` keys it may carry.

Why it exists: an event's ``kind`` and ``details`` are part of the public contract (flows
and dashboards filter on them), and the names drifted once between the code and
docs/protocol.md. Now the emitters build every event through :func:`build_event`, which
refuses a kind that is not catalogued here or a ``details`` key the entry does not name,
and ``tests/unit/test_event_catalogue.py`` checks the event table in docs/protocol.md
against :data:`CATALOGUE` in both directions.

To add an event: one :func:`_kind` line below (name, publisher, details keys, when), and
its row in the event table of docs/protocol.md. Readers must accept kinds they do not know
(the list grows), so adding a kind is compatible; renaming one is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from edgefleet_protocol.node_messages import Event, Level

Publisher = Literal["agent", "orchestrator"]


@dataclass(frozen=True, slots=True)
class EventKind:
    """One documented event kind."""

    name: str
    publisher: Publisher
    details: tuple[str, ...]
    """The ``details`` keys this kind may carry (an event may leave some out)."""
    when: str
    """When it is published, in the words of the doc's event table."""


_CATALOGUE: dict[str, EventKind] = {}


def _kind(name: str, publisher: Publisher, details: tuple[str, ...], when: str) -> EventKind:
    if name in _CATALOGUE:
        raise ValueError(f"event kind {name!r} is catalogued twice")
    entry = EventKind(name, publisher, details, when)
    _CATALOGUE[name] = entry
    return entry


# -- the agent, on nodes/{site}/{node}/events ---------------------------------------------------

DESIRED_ACCEPTED = _kind(
    "desired-accepted",
    "agent",
    ("generation",),
    "a desired document with a higher generation was applied",
)
DESIRED_STALE = _kind(
    "desired-stale",
    "agent",
    ("generation", "current"),
    "a desired document with a lower generation than the applied one was ignored",
)
DESIRED_REJECTED = _kind(
    "desired-rejected",
    "agent",
    ("field", "reason"),
    "a desired document was refused; the workloads stay as they are",
)
KEY_ROTATED = _kind(
    "key-rotated",
    "agent",
    ("key_id", "previous"),
    "a desired document signed by a newly endorsed orchestrator key was accepted; that key"
    " is in force from now on",
)
WORKLOAD_FAILED = _kind(
    "workload-failed",
    "agent",
    ("workload", "step", "permanent"),
    "a step on a workload failed (it is retried with backoff unless permanent)",
)
WORKLOAD_RESTARTED = _kind(
    "workload-restarted",
    "agent",
    ("workload",),
    "a workload was restarted (failed health checks or exited)",
)
ROLLED_BACK = _kind(
    "rolled-back",
    "agent",
    ("workload", "spec_hash"),
    "a workload under a rollout guard was not healthy by its deadline: the agent started the"
    " previous spec again",
)
WORKLOAD_UNHEALTHY = _kind(
    "workload-unhealthy", "agent", ("workload",), "a workload's health check failed"
)
RESOURCES_NOT_ENFORCED = _kind(
    "resources-not-enforced",
    "agent",
    ("workload",),
    "the runtime cannot enforce a new limit live (process: CPU)",
)
PROXY_FAILED = _kind(
    "proxy-failed",
    "agent",
    ("service", "reason"),
    "a local service proxy could not listen (its reason is also in reported.proxies)",
)
STORE_RECOVERED = _kind(
    "store-recovered",
    "agent",
    (),
    "the local store was unreadable: moved aside, the agent started empty",
)
STORE_WRITE_FAILED = _kind(
    "store-write-failed", "agent", (), "an accepted desired document could not be stored on disk"
)
EVENTS_SUPPRESSED = _kind(
    "events-suppressed",
    "agent",
    ("kind", "suppressed", "window_s"),
    "more events of one kind than the limit per window: how many were not sent, once",
)

# -- the orchestrator, on orchestrator/events -------------------------------------------------

NODE = _kind(
    "node", "orchestrator", (), "a node's presence changed: online, offline, stale, a new session"
)
PLACEMENT = _kind(
    "placement", "orchestrator", (), "a pass changed where an app's replicas are placed"
)
MESSAGE_REJECTED = _kind(
    "message-rejected",
    "orchestrator",
    ("topic", "reason"),
    "an inbound message was dropped (rate-limited: a flood is not echoed)",
)
COMMAND = _kind(
    "command",
    "orchestrator",
    ("ts", "operator", "verb", "request_id", "target_kind", "target", "ok", "result"),
    "a command was answered (the audit trail: who, verb, target, result; never the reply)",
)
AUTOSCALE = _kind(
    "autoscale",
    "orchestrator",
    (
        "metric",
        "observed",
        "samples",
        "target",
        "tolerance",
        "from",
        "to",
        "wanted",
        "state",
        "limited_by",
    ),
    "the autoscaler changed an app's count, or is limited or without data",
)
RESOURCES = _kind(
    "resources",
    "orchestrator",
    ("replica", "cpu", "memory_mb"),
    "a replica's limits were resized from its observed usage",
)
DRAIN = _kind(
    "drain",
    "orchestrator",
    ("replica", "from", "to", "state"),
    "a drain moved a replica, or reached a milestone (drained, stuck)",
)
REBALANCE = _kind(
    "rebalance",
    "orchestrator",
    ("replica", "from", "to"),
    "rebalancing started moving a replica toward an emptier or less allocated node, or an"
    " emptier site",
)
MOVE = _kind(
    "move",
    "orchestrator",
    ("replica", "from", "to", "completed", "cause"),
    "a moved replica's old copy was let go",
)
ROLLOUT = _kind(
    "rollout",
    "orchestrator",
    ("replica", "from", "to"),
    "a rollout changed phase, a wave started, a replica under rollout failed, or a replica"
    " started updating make-before-break (a new copy on `to`, the old one on `from`)",
)
NODE_ISOLATED = _kind(
    "node-isolated",
    "orchestrator",
    ("reason", "since"),
    "a node's data would end a reconcile pass: it is left out, treated as offline",
)
NODE_RELEASED = _kind(
    "node-released",
    "orchestrator",
    (),
    "an isolated node's data is usable again: it is scheduled again",
)
BROKER = _kind(
    "broker",
    "orchestrator",
    (),
    "the orchestrator reconnected to the broker (offline clocks restart), or a burst of wills"
    " was taken as a broker event ([Presence faults](#presence-faults))",
)
RECONCILE_FAILED = _kind(
    "reconcile-failed",
    "orchestrator",
    (),
    "a reconcile pass failed for a reason no single node explains; it was skipped",
)
COMMANDS_REFUSED = _kind(
    "commands-refused",
    "orchestrator",
    ("client", "refused", "window_s"),
    "a client sent commands over its rate limit: how many were not run, once per window",
)
REJECTIONS_SUPPRESSED = _kind(
    "rejections-suppressed",
    "orchestrator",
    ("source", "suppressed", "window_s"),
    "more invalid messages from one node than reported per window: how many more, once",
)
DOCUMENT_WITHHELD = _kind(
    "document-withheld",
    "orchestrator",
    ("topic", "bytes", "limit"),
    "a desired document over the agents' payload limit was not published",
)

CATALOGUE: Final[Mapping[str, EventKind]] = MappingProxyType(_CATALOGUE)
"""Every event kind, by name."""


def event_kind(name: str) -> EventKind:
    """The catalogue entry for ``name``; ``ValueError`` if it is not catalogued."""
    entry = CATALOGUE.get(name)
    if entry is None:
        raise ValueError(
            f"event kind {name!r} is not in edgefleet_protocol.events.CATALOGUE"
            " (add it there and to docs/protocol.md)"
        )
    return entry


def build_event(
    kind: str | EventKind,
    message: str,
    *,
    ts: float,
    level: Level = "info",
    node: str | None = None,
    site: str | None = None,
    app: str | None = None,
    details: Mapping[str, object] | None = None,
) -> Event:
    """An :class:`Event` of a catalogued kind whose ``details`` keys the entry names.

    A kind or key outside the catalogue is a programming error (``ValueError``): the
    contract would change without the doc.
    """
    entry = kind if isinstance(kind, EventKind) else event_kind(kind)
    extra = sorted(set(details or {}) - set(entry.details))
    if extra:
        raise ValueError(f"event kind {entry.name!r} does not carry details {extra}")
    return Event(
        ts=ts,
        level=level,
        kind=entry.name,
        message=message[:4096],
        node=node,
        site=site,
        app=app,
        details=dict(details or {}),
    )


__all__ = ["CATALOGUE", "EventKind", "build_event", "event_kind"]
