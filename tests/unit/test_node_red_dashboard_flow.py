"""examples/node-red/dashboard-flow.json is a well-formed Dashboard 2 flow that reads only
the documented status topics, and only fields the protocol doc shows in their payloads.

The real check is tests/integration/test_node_red_dashboard.py (real Node-RED, real
Chromium); this one is the cheap guard that runs everywhere: every reference resolves,
every MQTT-in filter is one of the read-only status topics of docs/protocol.md (nothing
that needs write access or operator rights), and every ``p.<field>`` a function node
reads appears in the doc's example payload of a topic wired into it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from edgefleet_protocol import Topics
from paho.mqtt.client import topic_matches_sub

REPO = Path(__file__).resolve().parents[2]
FLOW: list[dict[str, Any]] = json.loads(
    (REPO / "examples/node-red/dashboard-flow.json").read_text()
)
BY_ID = {node["id"]: node for node in FLOW}
DOC = (REPO / "docs/protocol.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```json\n(.*?)\n```", re.DOTALL)
DOC_EXAMPLES: dict[str, list[dict[str, Any]]] = {}
for _name, _body in EXAMPLE.findall(DOC):
    DOC_EXAMPLES.setdefault(_name, []).append(json.loads(_body))

TOPICS = Topics()
# The status topics the dashboard reads, with the model whose doc examples show the payload.
READS = {
    TOPICS.node_status("plant-a", "gw-1"): "NodeStatus",
    TOPICS.node_reported("plant-a", "gw-1"): "Reported",
    TOPICS.node_telemetry("plant-a", "gw-1"): "Telemetry",
    TOPICS.app_status("web"): "AppStatus",
    TOPICS.fleet_summary(): "FleetSummary",
}
MQTT_IN = [node for node in FLOW if node["type"] == "mqtt in"]
# Config-node references a Dashboard 2 flow carries besides wires and tabs.
REFERENCES = {"broker": "mqtt-broker", "group": "ui-group", "page": "ui-page", "ui": "ui-base"}


def test_ids_are_unique_and_every_reference_resolves_to_the_right_type() -> None:
    assert len(BY_ID) == len(FLOW), "duplicate node ids"
    tabs = {n["id"] for n in FLOW if n["type"] == "tab"}
    for node in FLOW:
        for output in node.get("wires", []):
            assert all(target in BY_ID for target in output), node["id"]
        if "z" in node:
            assert node["z"] in tabs, node["id"]
        for key, kind in REFERENCES.items():
            if key in node and node["type"] != "mqtt-broker":
                assert BY_ID[node[key]]["type"] == kind, (node["id"], key)
    pages = [n for n in FLOW if n["type"] == "ui-page"]
    assert [BY_ID[p["theme"]]["type"] for p in pages] == ["ui-theme"]


def test_the_page_is_served_at_the_documented_path() -> None:
    (base,) = [n for n in FLOW if n["type"] == "ui-base"]
    (page,) = [n for n in FLOW if n["type"] == "ui-page"]
    readme = (REPO / "examples/node-red/README.md").read_text()
    assert base["path"] + page["path"] == "/dashboard/fleet"
    assert base["path"] + page["path"] in readme


def test_the_broker_node_is_the_local_dev_broker_over_mqtt_311_with_no_credentials() -> None:
    (broker,) = [n for n in FLOW if n["type"] == "mqtt-broker"]
    assert (broker["broker"], broker["port"], broker["protocolVersion"]) == (
        "127.0.0.1",
        "1883",
        "4",
    )
    assert "credentials" not in broker
    assert all(n["broker"] == broker["id"] for n in MQTT_IN)


@pytest.mark.parametrize("topic", sorted(READS))
def test_each_status_topic_is_read_by_exactly_one_mqtt_in_node(topic: str) -> None:
    assert len([n for n in MQTT_IN if topic_matches_sub(n["topic"], topic)]) == 1


def test_no_filter_matches_a_topic_outside_the_read_only_status_topics() -> None:
    others = [
        TOPICS.node_desired("plant-a", "gw-1"),
        TOPICS.node_capabilities("plant-a", "gw-1"),
        TOPICS.node_events("plant-a", "gw-1"),
        TOPICS.orchestrator_status(),
        TOPICS.command("apps"),
        f"{TOPICS.root}/replies/anonymous/x",
    ]
    for node in MQTT_IN:
        assert node["qos"] in ("0", "1")
        assert not any(topic_matches_sub(node["topic"], t) for t in others), node["topic"]
    assert not [n for n in FLOW if n["type"] == "mqtt out"], "the dashboard only reads"


def feeding_topics(function_id: str) -> list[str]:
    return [
        topic
        for node in MQTT_IN
        if any(function_id in output for output in node["wires"])
        for topic in READS
        if topic_matches_sub(node["topic"], topic)
    ]


@pytest.mark.parametrize("function", [n["id"] for n in FLOW if n["type"] == "function"])
def test_every_field_a_function_reads_is_in_a_documented_payload_it_receives(
    function: str,
) -> None:
    topics = feeding_topics(function)
    assert topics, f"{function} is fed by no status topic"
    documented = {key for t in topics for example in DOC_EXAMPLES[READS[t]] for key in example}
    read = set(re.findall(r"\bp\.([A-Za-z_][A-Za-z0-9_]*)", BY_ID[function]["func"]))
    assert read, f"{function} reads no payload field"
    assert read <= documented, (function, sorted(read - documented))


def test_every_function_ends_in_a_dashboard_widget() -> None:
    widgets = {"ui-table", "ui-chart", "ui-text"}
    for node in FLOW:
        if node["type"] == "function":
            targets = {BY_ID[t]["type"] for output in node["wires"] for t in output}
            assert targets and targets <= widgets, (node["id"], targets)
            assert len(node["wires"]) == node["outputs"], node["id"]
