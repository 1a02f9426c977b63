"""A site broker's ``mosquitto.conf``: the site's own TLS listener plus the bridge to the
central broker (mosquitto 2.0 syntax).

One table (:data:`AGENT_TOPICS`) says what an agent reads and writes; the bridge's
``topic`` lines (:func:`bridge_topics`) and the ``bridge@<site>`` ACL at the central broker
(:mod:`.acl`) are both derived from it, so a topic the agents start using cannot reach the
one and miss the other. ``broker-config/bridge.conf`` is :func:`render_site_conf` for the
example site ``site-a``, and a unit test keeps the two identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgefleet_protocol.ids import validate_id
from edgefleet_protocol.topics import DEFAULT_ROOT, RULES, TopicKind, validate_root

from edgefleet_cli.brokerconfig import conf
from edgefleet_cli.brokerconfig.users import bridge_username

DEFAULT_LAYOUT = conf.Layout()
Direction = Literal["in", "out", "both"]

BRIDGE_CONNECTION = "edgefleet-central"
CENTRAL_DIR = "central"
"""Under the site's install dir: the central CA and the bridge's client cert and key."""

# What every agent of a site reads and writes, relative to ``<root>/nodes/<site>/<node>``
# (node kinds) or to ``<root>`` (the rest). Agents subscribe to their desired document,
# logs requests, the orchestrator's presence and the services their workloads use
# (edgefleet_agent.service.agent / .discovery); they publish their node topics and log
# lines into operators' reply topics (.logs).
AGENT_WRITES: tuple[TopicKind, ...] = (
    TopicKind.NODE_STATUS,
    TopicKind.NODE_CAPABILITIES,
    TopicKind.NODE_TELEMETRY,
    TopicKind.NODE_REPORTED,
    TopicKind.NODE_EVENTS,
    TopicKind.NODE_COMPLIANCE,
)
AGENT_SHARED_READS: tuple[str, ...] = ("services/#", "orchestrator/status")
REPLIES = "replies"


def logs_replies(root: str, site: str, node: str) -> str:
    """Where an agent's log lines go: any operator's reply subtree, about this node only."""
    return f"{root}/{REPLIES}/+/logs/{site}/{node}/#"


@dataclass(frozen=True, slots=True)
class BridgeTopic:
    pattern: str
    direction: Direction
    qos: int

    def line(self) -> str:
        return f"topic {self.pattern} {self.direction} {self.qos}"


def bridge_topics(site: str, root: str = DEFAULT_ROOT) -> tuple[BridgeTopic, ...]:
    """The bridge's ``topic`` lines: exactly the agents' reads (in) and writes (out).

    One line per topic kind rather than ``nodes/<site>/# both``: ``both`` relies on
    mosquitto's ``try_private`` to avoid echo loops, and the explicit lines work with any
    central broker and say exactly what crosses. QoS is the kind's own (telemetry 0).
    """
    root, site = validate_root(root), validate_id(site, kind="bridge site")
    nodes = f"{root}/nodes/{site}/+"
    return (
        *(BridgeTopic(f"{nodes}/{k.value}", "out", RULES[k].qos) for k in AGENT_WRITES),
        BridgeTopic(f"{nodes}/{TopicKind.NODE_DESIRED.value}", "in", 1),
        *(BridgeTopic(f"{root}/{rel}", "in", 1) for rel in AGENT_SHARED_READS),
        BridgeTopic(f"{nodes}/{TopicKind.NODE_LOGS.value}", "in", 1),
        BridgeTopic(logs_replies(root, site, "+"), "out", 1),
    )


def render_site_conf(
    site: str,
    *,
    central: str,
    password: str,
    layout: conf.Layout = DEFAULT_LAYOUT,
    root: str = DEFAULT_ROOT,
    port: int = conf.DEFAULT_PORT,
    bind: str | None = None,
) -> str:
    """The whole site broker config. ``central``: ``host:port`` of the central broker;
    ``password``: ``bridge@<site>``'s from the central set (the central broker checks the
    client certificate too when it requires one)."""
    site = validate_id(site, kind="bridge site")
    user = bridge_username(site)
    central_dir = conf.Layout(layout.path(CENTRAL_DIR), layout.data_dir)
    header = [
        f"# edgefleet SITE broker for site {site}, bridged to the central broker (mosquitto 2.0).",
        "# Made by `edgefleet broker config --bridge SITE` (bridges/<site>/ of the central set).",
        "# Gateways of the site connect here with the site's own set (its own CA); the bridge",
        "# carries exactly what agents write out and what they read in, so the site keeps",
        "# working while the uplink is down. Every line is explained in broker-config/README.md.",
        f"# Run: mosquitto -c {layout.path('bridge.conf')}",
        f"# Files: {layout.install_dir}/          the site's own set",
        f"#        {central_dir.install_dir}/  from the central set: ca.crt, {user}.crt/.key",
    ]
    bridge = [
        "# -- the bridge to the central broker: TLS, certificate and password ------------",
        f"connection {BRIDGE_CONNECTION}",
        f"address {central}",
        "bridge_protocol_version mqttv311",
        "try_private true",
        f"remote_clientid {user}",
        f"remote_username {user}",
        f"remote_password {password}",
        f"bridge_cafile {central_dir.path(conf.CA_CERT)}",
        f"bridge_certfile {central_dir.path(f'{user}.crt')}",
        f"bridge_keyfile {central_dir.path(f'{user}.key')}",
        "bridge_insecure false",
        "cleansession false",
        "start_type automatic",
        "restart_timeout 2 60",
        "keepalive_interval 60",
        "notifications true",
        "notifications_local_only true",
        "",
        "# Out: what the site's agents publish; in: what they read (nothing else crosses).",
        *(t.line() for t in bridge_topics(site, root)),
        "",
    ]
    local = conf.broker_lines(layout, port=port, require_client_cert=True, bind=bind)
    return "\n".join(header + local + bridge)
