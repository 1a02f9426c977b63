"""Who may connect to the production broker, and in which role.

Usernames are chosen so that no two roles can ever collide and none needs escaping in a
password file (``:`` separates user from hash there):

* ``orchestrator`` — the one control-plane identity;
* ``<site>.<node>`` — one agent per node. ``.`` cannot occur in an identifier, so the name
  is unambiguous and can never equal an operator's, a viewer's or the orchestrator's;
* ``bridge@<site>`` — a site broker's bridge into the central broker (``@`` cannot occur
  in an identifier either);
* operator and viewer names — plain identifiers, each used by one role only.

Every name is at most 64 characters, the X.509 limit for the common name of the client
certificate made for it; longer ``<site>.<node>`` pairs are refused rather than truncated,
because a truncated name could alias another node's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id

ORCHESTRATOR_USERNAME = "orchestrator"
MAX_USERNAME = 64


class Role(StrEnum):
    ORCHESTRATOR = "orchestrator"
    AGENT = "agent"
    OPERATOR = "operator"
    VIEWER = "viewer"
    BRIDGE = "bridge"


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """One broker identity. ``site``/``node`` are set for agents, ``site`` for bridges."""

    username: str
    role: Role
    site: str | None = None
    node: str | None = None


def parse_node_ref(ref: str) -> tuple[str, str]:
    """``"site/node"`` → ``("site", "node")``, or :class:`ProtocolError` naming the bad part."""
    parts = ref.split("/")
    if len(parts) != 2:
        raise ProtocolError("node", f"{ref!r} must be SITE/NODE (exactly one '/')")
    site = validate_id(parts[0], kind="site")
    node = validate_id(parts[1], kind="node")
    return site, node


def agent_username(site: str, node: str) -> str:
    return f"{site}.{node}"


def bridge_username(site: str) -> str:
    return f"bridge@{site}"


def build_users(
    *,
    nodes: Iterable[str] = (),
    operators: Iterable[str] = (),
    viewers: Iterable[str] = (),
    bridges: Iterable[str] = (),
) -> tuple[BrokerUser, ...]:
    """Validate every name and return the users, orchestrator first, in a stable order.

    Duplicates of the same entry are merged; one name in two roles is an error, since a
    broker identity has exactly one ACL.
    """
    users: dict[str, BrokerUser] = {
        ORCHESTRATOR_USERNAME: BrokerUser(ORCHESTRATOR_USERNAME, Role.ORCHESTRATOR)
    }

    def add(user: BrokerUser, field: str) -> None:
        if len(user.username) > MAX_USERNAME:
            raise ProtocolError(
                field,
                f"username {user.username!r} is {len(user.username)} characters; at most "
                f"{MAX_USERNAME} fit a certificate common name — use shorter ids",
            )
        existing = users.get(user.username)
        if existing is not None and existing != user:
            raise ProtocolError(
                field,
                f"{user.username!r} is already used by the {existing.role} role; "
                "one name can have only one role",
            )
        users[user.username] = user

    for ref in nodes:
        site, node = parse_node_ref(ref)
        add(BrokerUser(agent_username(site, node), Role.AGENT, site=site, node=node), "node")
    for name in operators:
        add(BrokerUser(validate_id(name, kind="operator"), Role.OPERATOR), "operator")
    for name in viewers:
        add(BrokerUser(validate_id(name, kind="viewer"), Role.VIEWER), "viewer")
    for site in bridges:
        site = validate_id(site, kind="bridge site")
        add(BrokerUser(bridge_username(site), Role.BRIDGE, site=site), "bridge")
    return tuple(users.values())
