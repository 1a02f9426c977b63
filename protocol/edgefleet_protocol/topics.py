"""Topic builders and the topic parser: the one place that knows the topic tree.

Every topic edgefleet uses hangs under a configurable root (default ``edgefleet/v1``) so
several fleets can share a broker. Builders validate the identifiers they are given;
:meth:`Topics.parse` turns an inbound topic back into a :class:`ParsedTopic` or raises
:class:`~edgefleet_protocol.errors.ProtocolError`. Each topic kind carries its QoS and
retain rule (:data:`RULES`), so publishers cannot get them wrong one call site at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id

DEFAULT_ROOT = "edgefleet/v1"
_ROOT_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class TopicKind(StrEnum):
    NODE_STATUS = "status"
    NODE_CAPABILITIES = "capabilities"
    NODE_TELEMETRY = "telemetry"
    NODE_DESIRED = "desired"
    NODE_REPORTED = "reported"
    NODE_EVENTS = "events"
    NODE_LOGS = "logs"
    NODE_COMPLIANCE = "compliance"
    APP_STATUS = "app-status"
    APP_ROLLOUT = "app-rollout"
    SERVICE = "service"
    FLEET_SUMMARY = "fleet-summary"
    ORCHESTRATOR_STATUS = "orchestrator-status"
    ORCHESTRATOR_EVENTS = "orchestrator-events"
    COMMAND = "command"


NODE_KINDS = (
    TopicKind.NODE_STATUS,
    TopicKind.NODE_CAPABILITIES,
    TopicKind.NODE_TELEMETRY,
    TopicKind.NODE_DESIRED,
    TopicKind.NODE_REPORTED,
    TopicKind.NODE_EVENTS,
    TopicKind.NODE_LOGS,
    TopicKind.NODE_COMPLIANCE,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """How a topic kind is published: its QoS and whether the broker retains it."""

    qos: int
    retain: bool


RULES: dict[TopicKind, Rule] = {
    TopicKind.NODE_STATUS: Rule(qos=1, retain=True),
    TopicKind.NODE_CAPABILITIES: Rule(qos=1, retain=True),
    TopicKind.NODE_TELEMETRY: Rule(qos=0, retain=False),
    TopicKind.NODE_DESIRED: Rule(qos=1, retain=True),
    TopicKind.NODE_REPORTED: Rule(qos=1, retain=True),
    TopicKind.NODE_EVENTS: Rule(qos=1, retain=False),
    # Logs requests (operators to one agent) are never retained: a stale one would stream
    # again on every agent start.
    TopicKind.NODE_LOGS: Rule(qos=1, retain=False),
    TopicKind.NODE_COMPLIANCE: Rule(qos=1, retain=True),
    TopicKind.APP_STATUS: Rule(qos=1, retain=True),
    TopicKind.APP_ROLLOUT: Rule(qos=1, retain=True),
    TopicKind.SERVICE: Rule(qos=1, retain=True),
    TopicKind.FLEET_SUMMARY: Rule(qos=1, retain=True),
    TopicKind.ORCHESTRATOR_STATUS: Rule(qos=1, retain=True),
    TopicKind.ORCHESTRATOR_EVENTS: Rule(qos=1, retain=False),
    # Commands are never retained: a stale retained command would run again on every
    # orchestrator start.
    TopicKind.COMMAND: Rule(qos=1, retain=False),
}

REPLY_RULE = Rule(qos=1, retain=False)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """What an inbound topic names. Fields that the kind does not use are ``None``."""

    kind: TopicKind
    site: str | None = None
    node: str | None = None
    app: str | None = None
    service: str | None = None
    verb: str | None = None
    operator: str | None = None
    """A command's sender: the ``{user}`` of ``commands/{user}/{verb}``, which the broker ACL
    binds to the publishing account; ``None`` for the accountless ``commands/{verb}``."""


def validate_root(root: str) -> str:
    """A root prefix is one or more plain levels: no wildcards, no empty levels."""
    levels = root.split("/")
    if not root or any(_ROOT_LEVEL.fullmatch(level) is None for level in levels):
        raise ProtocolError(
            "root", f"{root!r} is not a valid topic root: levels of A-Z, a-z, 0-9, '_', '.', '-'"
        )
    return root


_NODE_SUFFIX = {
    "status": TopicKind.NODE_STATUS,
    "capabilities": TopicKind.NODE_CAPABILITIES,
    "telemetry": TopicKind.NODE_TELEMETRY,
    "desired": TopicKind.NODE_DESIRED,
    "reported": TopicKind.NODE_REPORTED,
    "events": TopicKind.NODE_EVENTS,
    "logs": TopicKind.NODE_LOGS,
    "compliance": TopicKind.NODE_COMPLIANCE,
}


class Topics:
    """Builds and parses the topics of one fleet (one root prefix)."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = validate_root(root)
        self._levels = len(self.root.split("/"))

    # -- builders -------------------------------------------------------------------------

    def node(self, site: str, node: str, kind: TopicKind) -> str:
        if kind not in NODE_KINDS:
            raise ProtocolError("kind", f"{kind} is not a node topic")
        validate_id(site, kind="site")
        validate_id(node, kind="node")
        return f"{self.root}/nodes/{site}/{node}/{kind.value}"

    def node_status(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_STATUS)

    def node_capabilities(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_CAPABILITIES)

    def node_telemetry(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_TELEMETRY)

    def node_desired(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_DESIRED)

    def node_reported(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_REPORTED)

    def node_events(self, site: str, node: str) -> str:
        return self.node(site, node, TopicKind.NODE_EVENTS)

    def node_logs(self, site: str, node: str) -> str:
        """Where operators ask this node's agent for a workload's log lines."""
        return self.node(site, node, TopicKind.NODE_LOGS)

    def app_status(self, app: str) -> str:
        return f"{self.root}/apps/{validate_id(app, kind='app')}/status"

    def app_rollout(self, app: str) -> str:
        return f"{self.root}/apps/{validate_id(app, kind='app')}/rollout"

    def service(self, service: str) -> str:
        return f"{self.root}/services/{validate_id(service, kind='service')}"

    def fleet_summary(self) -> str:
        return f"{self.root}/fleet/summary"

    def orchestrator_status(self) -> str:
        return f"{self.root}/orchestrator/status"

    def orchestrator_events(self) -> str:
        return f"{self.root}/orchestrator/events"

    def command(self, verb: str, operator: str | None = None) -> str:
        """``commands/{operator}/{verb}``: the broker ACL lets each operator account publish
        only under its own name, so the topic says who sent a command. Without an operator,
        the accountless ``commands/{verb}`` of a broker without accounts (the dev config)."""
        verb = validate_id(verb, kind="verb")
        if operator is None:
            return f"{self.root}/commands/{verb}"
        return f"{self.root}/commands/{validate_id(operator, kind='operator')}/{verb}"

    def replies(self, operator: str) -> str:
        """The subtree an operator's replies go to (the ACL lets only it read there)."""
        return f"{self.root}/replies/{validate_id(operator, kind='operator')}"

    # -- subscription filters -------------------------------------------------------------

    def all_nodes(self, kind: TopicKind | None = None) -> str:
        """Filter for one node topic kind of every node (or every node topic)."""
        if kind is None:
            return f"{self.root}/nodes/#"
        if kind not in NODE_KINDS:
            raise ProtocolError("kind", f"{kind} is not a node topic")
        return f"{self.root}/nodes/+/+/{kind.value}"

    def all_commands(self) -> str:
        """Accountless commands, ``commands/{verb}`` (the dev config)."""
        return f"{self.root}/commands/+"

    def all_operator_commands(self) -> str:
        """Every operator's commands, ``commands/{operator}/{verb}``."""
        return f"{self.root}/commands/+/+"

    def command_filters(self) -> list[str]:
        """What the orchestrator subscribes to for commands: operators' and accountless."""
        return [self.all_operator_commands(), self.all_commands()]

    def all_app_status(self) -> str:
        return f"{self.root}/apps/+/status"

    # -- parsing --------------------------------------------------------------------------

    def parse(self, topic: str) -> ParsedTopic:
        """Name what ``topic`` is, or raise :class:`ProtocolError` saying why it is not ours."""
        if not isinstance(topic, str):
            raise ProtocolError("topic", "must be a string")
        if not topic.startswith(self.root + "/"):
            raise ProtocolError("topic", f"{topic!r} is not under the root {self.root!r}")
        levels = topic.split("/")[self._levels :]
        head = levels[0] if levels else ""
        match head, len(levels):
            case "nodes", 4:
                _, site, node, suffix = levels
                kind = _NODE_SUFFIX.get(suffix)
                if kind is None:
                    raise ProtocolError("topic", f"unknown node topic {suffix!r}")
                return ParsedTopic(
                    kind=kind,
                    site=_topic_id(site, "site"),
                    node=_topic_id(node, "node"),
                )
            case "apps", 3 if levels[2] == "status":
                return ParsedTopic(kind=TopicKind.APP_STATUS, app=_topic_id(levels[1], "app"))
            case "apps", 3 if levels[2] == "rollout":
                return ParsedTopic(kind=TopicKind.APP_ROLLOUT, app=_topic_id(levels[1], "app"))
            case "services", 2:
                return ParsedTopic(kind=TopicKind.SERVICE, service=_topic_id(levels[1], "service"))
            case "fleet", 2 if levels[1] == "summary":
                return ParsedTopic(kind=TopicKind.FLEET_SUMMARY)
            case "orchestrator", 2 if levels[1] == "status":
                return ParsedTopic(kind=TopicKind.ORCHESTRATOR_STATUS)
            case "orchestrator", 2 if levels[1] == "events":
                return ParsedTopic(kind=TopicKind.ORCHESTRATOR_EVENTS)
            case "commands", 2:
                return ParsedTopic(kind=TopicKind.COMMAND, verb=_topic_id(levels[1], "verb"))
            case "commands", 3:
                return ParsedTopic(
                    kind=TopicKind.COMMAND,
                    operator=_topic_id(levels[1], "operator"),
                    verb=_topic_id(levels[2], "verb"),
                )
        raise ProtocolError("topic", f"{topic!r} is not an edgefleet topic")


def _topic_id(value: str, kind: str) -> str:
    try:
        return validate_id(value, kind=kind)
    except ProtocolError as exc:
        raise ProtocolError(f"topic.{kind}", exc.reason) from None
