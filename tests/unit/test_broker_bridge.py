"""The site side of a bridge: ``bridges/<site>/`` of the central set, the documented
``broker-config/bridge.conf``, and the bridge's topic lines against the agents' ACL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from edgefleet_cli.brokerconfig import bridgeconf, conf
from edgefleet_cli.brokerconfig.acl import rules_for
from edgefleet_cli.brokerconfig.bundle import ConfigRequest, build_config_set
from edgefleet_cli.brokerconfig.users import BrokerUser, Role, build_users
from paho.mqtt.client import topic_matches_sub

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
R = "edgefleet/v1"


def test_the_repository_bridge_conf_is_the_example_rendering() -> None:
    on_disk = (REPO / "broker-config" / "bridge.conf").read_text()
    assert on_disk == bridgeconf.render_site_conf(
        "site-a",
        central="central.example.net:8883",
        password="CHANGE-ME-see-central-credentials.json",
    )


def test_the_site_listener_runs_the_production_rules() -> None:
    text = bridgeconf.render_site_conf("site-a", central="c:8883", password="x")
    production = conf.render_production_conf().splitlines()[3:]  # all but the header
    lines = text.splitlines()
    start = lines.index(production[1])
    assert lines[start - 1 : start - 1 + len(production)] == production


def _covered(topic: str, direction: str, site: str = "s1") -> bool:
    return any(
        t.direction in (direction, "both") and topic_matches_sub(t.pattern, topic)
        for t in bridgeconf.bridge_topics(site)
    )


def test_every_topic_an_agent_may_use_crosses_the_bridge_the_right_way() -> None:
    # The agent's ACL is what the agent reads and writes; each of its rules, made concrete
    # for one node, must cross its site's bridge in the same direction.
    agent = BrokerUser("s1.n1", Role.AGENT, site="s1", node="n1")
    for rule in rules_for(agent):
        concrete = rule.topic.replace("+", "alice").replace("#", "r1/1")
        direction = "out" if rule.access == "write" else "in"
        assert _covered(concrete, direction), rule
        other = "in" if direction == "out" else "out"
        assert not _covered(concrete, other), rule  # nothing echoes back


def test_the_bridge_carries_nothing_agents_do_not_use() -> None:
    for topic in (
        f"{R}/nodes/s2/n1/status",  # another site
        f"{R}/nodes/s2/n1/desired",
        f"{R}/commands/alice/deploy",
        f"{R}/replies/alice/r1",
        f"{R}/apps/web/status",
        f"{R}/fleet/summary",
        f"{R}/orchestrator/events",
    ):
        assert not _covered(topic, "in") and not _covered(topic, "out"), topic
    # A site-local forged desired document never goes out (the central ACL would drop it
    # anyway); telemetry crosses at its own QoS 0.
    assert not _covered(f"{R}/nodes/s1/n1/desired", "out")
    qos = {t.pattern.rsplit("/", 1)[-1]: t.qos for t in bridgeconf.bridge_topics("s1")}
    assert qos["telemetry"] == 0 and qos["status"] == 1


def test_the_bridge_users_acl_is_exactly_its_topic_lines() -> None:
    bridge = BrokerUser("bridge@s1", Role.BRIDGE, site="s1")
    expected = [
        ("write" if t.direction == "out" else "read", t.pattern)
        for t in bridgeconf.bridge_topics("s1")
    ]
    assert [(r.access, r.topic) for r in rules_for(bridge)] == expected


def test_a_bridge_site_gets_its_side_of_the_bridge_in_the_central_set() -> None:
    counter = iter(range(1000))
    request = ConfigRequest(
        users=build_users(nodes=["site-a/gw1"], bridges=["site-a"]),
        hosts=("central.example.net",),
        port=9883,
        root="fleet2/v1",
    )
    files = {
        f.path: f
        for f in build_config_set(
            request, now=NOW, new_password=lambda: f"pw-{next(counter)}", new_salt=lambda: b"s" * 12
        )
    }
    password = json.loads(files[conf.CREDENTIALS_FILE].content)["users"]["bridge@site-a"][
        "password"
    ]
    site_conf = files["bridges/site-a/bridge.conf"]
    assert site_conf.secret  # it holds the bridge's password
    lines = site_conf.content.decode().splitlines()
    for expected in (
        "address central.example.net:9883",
        "remote_username bridge@site-a",
        f"remote_password {password}",
        "bridge_cafile /etc/mosquitto/edgefleet/central/ca.crt",
        "bridge_certfile /etc/mosquitto/edgefleet/central/bridge@site-a.crt",
        "bridge_keyfile /etc/mosquitto/edgefleet/central/bridge@site-a.key",
        "bridge_insecure false",
        "topic fleet2/v1/nodes/site-a/+/desired in 1",
        "require_certificate true",
    ):
        assert expected in lines
    central = "bridges/site-a/central"
    assert files[f"{central}/ca.crt"].content == files[conf.CA_CERT].content
    assert files[f"{central}/bridge@site-a.key"].secret
    cert = x509.load_pem_x509_certificate(files[f"{central}/bridge@site-a.crt"].content)
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "bridge@site-a"
    assert not any(p.startswith("bridges/") for p in files if "gw1" in p)
