"""examples/node-red/flow.json is importable and reads what the protocol really publishes.

Checks: valid JSON in Node-RED's flow shape (unique ids, wires and broker references that
resolve), MQTT-in nodes with JSON parsing on whose topics are valid subscription filters
matching the documented dashboard topics, and — following the wires from each MQTT-in node
to the function nodes it feeds — every ``p.<field>`` a function reads is a top-level scalar
in that topic's example payload in docs/protocol.md (flat enough for Node-RED as it is).
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
FLOW: list[dict[str, Any]] = json.loads((REPO / "examples/node-red/flow.json").read_text())
BY_ID = {node["id"]: node for node in FLOW}
DOC = (REPO / "docs/protocol.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```json\n(.*?)\n```", re.DOTALL)
DOC_EXAMPLES = {name: json.loads(body) for name, body in EXAMPLE.findall(DOC)}

TOPICS = Topics()
# The dashboard topics the flow is for, with the model whose doc example shows the payload.
DASHBOARD = {
    TOPICS.fleet_summary(): "FleetSummary",
    TOPICS.node_status("plant-a", "gw-1"): "NodeStatus",
    TOPICS.app_status("web"): "AppStatus",
}
MQTT_IN = [node for node in FLOW if node["type"] == "mqtt in"]
SCALAR = (str, int, float, bool)


def valid_filter(topic_filter: str) -> bool:
    """MQTT 3.1.1 §4.7: '#' only as the whole last level, '+' only as a whole level."""
    levels = topic_filter.split("/")
    if not topic_filter or "\0" in topic_filter:
        return False
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def fed_by(node_id: str) -> list[dict[str, Any]]:
    """Nodes wired directly from ``node_id`` (every output)."""
    return [BY_ID[target] for output in BY_ID[node_id]["wires"] for target in output]


def test_the_flow_is_a_list_of_nodes_with_unique_ids_and_resolvable_references() -> None:
    assert isinstance(FLOW, list)
    assert all(isinstance(n, dict) and n.get("id") and n.get("type") for n in FLOW)
    assert len(BY_ID) == len(FLOW), "duplicate node ids"
    tabs = {n["id"] for n in FLOW if n["type"] == "tab"}
    for node in FLOW:
        for output in node.get("wires", []):
            assert all(target in BY_ID for target in output), node["id"]
        if "z" in node:
            assert node["z"] in tabs, node["id"]


def test_the_broker_node_points_at_the_local_dev_broker_over_mqtt_311() -> None:
    brokers = [n for n in FLOW if n["type"] == "mqtt-broker"]
    assert len(brokers) == 1
    broker = brokers[0]
    assert (broker["broker"], broker["port"]) == ("127.0.0.1", "1883")
    assert broker["protocolVersion"] == "4"  # 3.1.1: works with mosquitto and the demo's amqtt
    assert all(n["broker"] == broker["id"] for n in MQTT_IN)


def test_mqtt_in_nodes_parse_json_and_subscribe_with_valid_filters() -> None:
    assert MQTT_IN
    for node in MQTT_IN:
        assert node["datatype"] == "json", node["name"]
        assert valid_filter(node["topic"]), node["topic"]
        assert node["qos"] in ("0", "1", "2")


@pytest.mark.parametrize("topic", sorted(DASHBOARD))
def test_each_dashboard_topic_is_received_by_exactly_one_mqtt_in_node(topic: str) -> None:
    receivers = [n["name"] for n in MQTT_IN if topic_matches_sub(n["topic"], topic)]
    assert len(receivers) == 1, (topic, receivers)


def test_the_filters_match_nothing_but_the_dashboard_topics() -> None:
    others = [
        TOPICS.node_desired("plant-a", "gw-1"),
        TOPICS.node_telemetry("plant-a", "gw-1"),
        TOPICS.orchestrator_status(),
        TOPICS.command("apps"),
    ]
    for node in MQTT_IN:
        assert not any(topic_matches_sub(node["topic"], t) for t in others), node["topic"]


def fields_read(function_node: dict[str, Any]) -> set[str]:
    return set(re.findall(r"\bp\.([A-Za-z_][A-Za-z0-9_]*)", function_node["func"]))


@pytest.mark.parametrize("topic", sorted(DASHBOARD))
def test_every_field_the_flow_reads_is_a_top_level_scalar_of_the_documented_payload(
    topic: str,
) -> None:
    example = DOC_EXAMPLES[DASHBOARD[topic]]
    (receiver,) = [n for n in MQTT_IN if topic_matches_sub(n["topic"], topic)]
    functions = [n for n in fed_by(receiver["id"]) if n["type"] == "function"]
    assert functions, f"{receiver['name']} feeds no function node"
    for function in functions:
        read = fields_read(function)
        assert read, f"{function['name']} reads no payload field"
        for name in sorted(read):
            assert name in example, f"{function['name']} reads {name!r}, not in the example"
            assert isinstance(example[name], SCALAR), f"{name!r} is not a top-level scalar"


def test_every_output_ends_in_a_debug_node_so_nothing_needs_a_dashboard() -> None:
    def ends(node: dict[str, Any]) -> set[str]:
        targets = fed_by(node["id"])
        if not targets:
            return {node["type"]}
        return set().union(*(ends(t) for t in targets))

    for node in MQTT_IN:
        assert ends(node) == {"debug"}, node["name"]
    core = {"tab", "mqtt-broker", "mqtt in", "function", "template", "debug", "comment"}
    assert {n["type"] for n in FLOW} <= core
