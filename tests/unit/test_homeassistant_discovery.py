"""Home Assistant discovery as a pure function: what each node and app turns into.
The real broker, retained flags and removal are tests/integration/test_homeassistant.py."""

from __future__ import annotations

import json
import re

from edgefleet_orchestrator.exporters.homeassistant import discovery, object_id
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.telemetry import TelemetryView

OBJECT_ID = re.compile(r"[a-zA-Z0-9_-]+")


def test_object_ids_keep_only_what_ha_accepts() -> None:
    assert object_id("edgefleet", "fleet.b/v1", "gw-1") == "edgefleet_fleet_b_v1_gw-1"
    assert OBJECT_ID.fullmatch(object_id("a b", "ü/+#"))


def test_a_node_without_telemetry_has_a_state_document_but_no_sensor_yet() -> None:
    out = discovery({"gw-1": NodeRecord(node="gw-1", site="a")}, {}, root="edgefleet/v1")
    assert out == {"edgefleet/v1/homeassistant/nodes/a/gw-1": b"{}"}


def test_only_reported_values_become_entities_and_temperature_comes_from_its_metric() -> None:
    hot = NodeRecord(
        node="gw-1",
        site="a",
        telemetry=TelemetryView(cpu_pct=10.0, metrics={"temperature_c": 48.25}),
    )
    out = discovery({"gw-1": hot}, {}, root="edgefleet/v1", prefix="ha")
    configs = {t: json.loads(p) for t, p in out.items() if t.endswith("/config")}
    assert sorted(c["name"] for c in configs.values()) == ["CPU", "Temperature"]
    state = json.loads(out["edgefleet/v1/homeassistant/nodes/a/gw-1"])
    assert state == {"cpu_pct": 10.0, "temperature_c": 48.25}
    for topic, config in configs.items():
        assert topic == f"ha/sensor/{config['unique_id']}/config"
        assert OBJECT_ID.fullmatch(config["unique_id"])
