"""The mosquitto ACL file, rendered from the users and their roles.

One rule table per role (:func:`rules_for`), so a reviewer can read who may do what in one
screen and the tests can hold each role to it. Semantics of mosquitto 2.0's ``acl_file``
that the rules rely on:

* ``topic read|write|readwrite FILTER`` under ``user NAME`` applies to that user only;
  lines before the first ``user`` would apply to anonymous clients, and we emit none.
* A PUBLISH to a topic the user may not write is dropped (MQTT 5: PUBACK reason 0x87;
  MQTT 3.1.1: acknowledged as usual, but never delivered). A subscription outside the
  read rules is granted, but no message it would match is delivered. So the broker, not
  the client, decides what flows — tests must observe delivery, not return codes.
* Nothing here grants ``$SYS/#``; broker internals stay private.

Agents get explicit topics rather than a ``pattern`` with ``%u``: their username is
``<site>.<node>``, which is not a topic path, and explicit lines are easier to audit.
Operators' command and reply topics are namespaced by their user name the same way,
with explicit lines under each ``user`` rather than ``pattern ... %u`` lines: mosquitto
applies ``pattern`` lines to *every* user, so ``pattern write commands/%u/+`` would also
let viewers and agents publish commands under their own names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from edgefleet_protocol.topics import DEFAULT_ROOT, TopicKind, validate_root

from edgefleet_cli.brokerconfig.bridgeconf import (
    AGENT_SHARED_READS,
    AGENT_WRITES,
    REPLIES,
    bridge_topics,
    logs_replies,
)
from edgefleet_cli.brokerconfig.users import BrokerUser, Role

__all__ = ["AGENT_WRITES", "AclRule", "acl_text", "rules_for"]

Access = Literal["read", "write", "readwrite"]

# Relative to the root: the status topics operators and dashboards may read. Telemetry is
# among them (a dashboard's CPU and memory charts need it; it carries load figures, never
# specs, env or secrets); desired documents, commands and node events are not.
STATUS_READS: tuple[str, ...] = (
    "nodes/+/+/status",
    "nodes/+/+/telemetry",
    "nodes/+/+/capabilities",
    "nodes/+/+/reported",
    "nodes/+/+/compliance",
    "apps/+/status",
    "fleet/summary",
    "orchestrator/status",
    "orchestrator/events",
    "services/#",
    "homeassistant/#",
)

HA_PREFIX = "homeassistant"
"""Home Assistant's default discovery prefix: the orchestrator writes its configs there and
operators and dashboards (Home Assistant's own account) read them."""

COMMANDS = "commands"
"""Operators publish commands to ``<root>/commands/<operator>/<verb>``, each under its own name."""

# Command replies go to ``<root>/replies/<operator>/...``; each operator reads only its own.


@dataclass(frozen=True, slots=True)
class AclRule:
    access: Access
    topic: str

    def line(self) -> str:
        return f"topic {self.access} {self.topic}"


def rules_for(user: BrokerUser, root: str = DEFAULT_ROOT) -> tuple[AclRule, ...]:
    """The ACL rules of one user, in the order they are written."""
    root = validate_root(root)
    match user.role:
        case Role.ORCHESTRATOR:
            # Home Assistant discovery (--homeassistant) lives under HA's own prefix.
            return (AclRule("readwrite", f"{root}/#"), AclRule("write", f"{HA_PREFIX}/#"))
        case Role.AGENT:
            # The agent's own topics only (the table lives in .bridgeconf, shared with
            # the site bridge); log lines go out only to operators' replies about it.
            own = f"{root}/nodes/{user.site}/{user.node}"
            assert user.site is not None and user.node is not None
            return (
                *(AclRule("write", f"{own}/{kind.value}") for kind in AGENT_WRITES),
                AclRule("read", f"{own}/{TopicKind.NODE_DESIRED.value}"),
                *(AclRule("read", f"{root}/{rel}") for rel in AGENT_SHARED_READS),
                AclRule("read", f"{own}/{TopicKind.NODE_LOGS.value}"),
                AclRule("write", logs_replies(root, user.site, user.node)),
            )
        case Role.BRIDGE:
            # The site's bridge: exactly its `topic` lines — what its agents write goes
            # out, what they read comes in — for its own site and nothing else.
            assert user.site is not None
            return tuple(
                AclRule("write" if t.direction == "out" else "read", t.pattern)
                for t in bridge_topics(user.site, root)
            )
        case Role.OPERATOR:
            # Commands under the operator's own name: the topic, which the broker binds to
            # the account, tells the orchestrator who sent a command (never the payload).
            return (
                AclRule("write", f"{root}/{COMMANDS}/{user.username}/+"),
                AclRule("write", f"{root}/nodes/+/+/{TopicKind.NODE_LOGS.value}"),
                *(AclRule("read", f"{root}/{rel}") for rel in STATUS_READS),
                AclRule("read", f"{HA_PREFIX}/#"),
                AclRule("read", f"{root}/{REPLIES}/{user.username}/#"),
            )
        case Role.VIEWER:
            return (
                *(AclRule("read", f"{root}/{rel}") for rel in STATUS_READS),
                AclRule("read", f"{HA_PREFIX}/#"),
            )


def acl_text(users: Iterable[BrokerUser], root: str = DEFAULT_ROOT) -> str:
    """The whole ``acl_file``: one ``user`` block per user, each headed by its role."""
    lines = [
        "# edgefleet broker ACL — generated by `edgefleet broker config`; do not edit by hand.",
        "# No rules precede the first `user` line: anonymous clients get nothing.",
        "",
    ]
    for user in users:
        lines.append(f"# role: {user.role.value}")
        lines.append(f"user {user.username}")
        lines.extend(rule.line() for rule in rules_for(user, root))
        lines.append("")
    return "\n".join(lines)
