"""Home Assistant MQTT discovery against a real mosquitto: the orchestrator (in this
process) with its discovery exporter, two protocol-level gateways and one app.

Every config is checked the way HA reads it, from a fresh subscription (so every message
arrives as retained): the topic is ``<prefix>/sensor/<object_id>/config`` with an object id
HA accepts and equal to the ``unique_id``, the sensor's required ``state_topic`` names a
retained topic that holds the value the template reads, the device has identifiers and a
name, availability reads the gateway's own status topic. Deleting the app and forgetting a
gateway clear their configs (empty retained payloads), so a new subscriber sees none.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefleet_orchestrator.exporters.homeassistant import HomeAssistantExporter
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Session
from harness.fleet import FakeNode, Operator, eventually, running_orchestrator

# From HA's MQTT docs: the discovery topic and object id format, and what a discovered
# sensor needs (state_topic is its one required option; unique_id and device.identifiers
# are what put an entity on a device; availability entries need a topic).
CONFIG_TOPIC = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>[a-z_]+)/(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
REQUIRED = {"sensor": {"state_topic"}}
DEVICE_KEYS = {"identifiers", "name"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available"}


async def retained(url: str, topic_filter: str, quiet_s: float = 0.4) -> dict[str, InboundMessage]:
    """What a new subscriber gets: every retained message under the filter."""
    session = Session(
        BrokerSettings.from_url(url),
        client_id=f"ha-{uuid.uuid4().hex[:6]}",
        subscriptions=[topic_filter],
    )
    session.start()
    got: dict[str, InboundMessage] = {}
    try:
        assert await session.wait_connected(5)
        with contextlib_suppress_timeout():
            while True:
                async with asyncio.timeout(quiet_s):
                    message = await anext(aiter(session.messages()))
                first = got.get(message.topic)
                # Retained copies come first on a new subscription; a later live update
                # (retain flag clear) replaces the value but not what the broker kept.
                got[message.topic] = replace(message, retain=(first or message).retain)
    finally:
        await session.close()
    return {t: m for t, m in got.items() if m.payload}


class contextlib_suppress_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *rest: object) -> bool:
        return kind is TimeoutError


def render(template: str, value_json: dict[str, Any]) -> Any:
    """HA's templates here are all ``{{ value_json.KEY }}``."""
    match = re.fullmatch(r"\{\{ value_json\.([a-z_]+) \}\}", template)
    assert match, template
    return value_json[match.group(1)]


async def test_discovery_configs_follow_the_ha_schema_are_retained_and_removed(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    prefix = f"ha-{uuid.uuid4().hex[:8]}"
    nodes = [FakeNode(broker_url, topic_root, f"gw-{i}", "plant-a") for i in range(2)]
    async with running_orchestrator(broker_url, topic_root, tmp_path / "orch") as orch:
        exporter = HomeAssistantExporter(orch, prefix=prefix, interval_s=0.2)
        task = asyncio.create_task(exporter.run())
        try:
            for n in nodes:
                await n.start()
            values: list[dict[str, Any]] = [
                {
                    "cpu_pct": 12.5,
                    "memory_pct": 40,
                    "disk_pct": 10,
                    "metrics": {"temperature_c": 51.0},
                },
                {"cpu_pct": 3, "memory_pct": 20, "disk_pct": 70},
            ]
            registry = orch.state.registry
            for _ in range(50):  # a node's own hello (full, empty) may land after ours
                for n, v in zip(nodes, values, strict=True):
                    await n.telemetry(full=True, **v)
                await asyncio.sleep(0.1)
                known = [registry.nodes.get(n.node) for n in nodes]
                if all(r is not None and r.telemetry.cpu_pct is not None for r in known):
                    break
            async with Operator(broker_url, topic_root) as op:
                manifest = {
                    "name": "web",
                    "replicas": 2,
                    "workload": {"runtime": "process", "command": ["true"]},
                }
                assert (await op.call("deploy", manifest=manifest))["ok"]
                await eventually(
                    lambda: (s := orch.state.statuses.get("web")) is not None and s.running == 2,
                    timeout_s=15,
                    what="web running",
                )
                seen: dict[str, InboundMessage] = {}

                async def all_there() -> bool:
                    nonlocal seen
                    seen = await retained(broker_url, f"{prefix}/#")
                    return len(seen) == 11  # 5 + 4 gateway sensors, 2 app sensors

                deadline = time.monotonic() + 40  # generous: a loaded 2-core box is slow
                while time.monotonic() < deadline and not await all_there():
                    await asyncio.sleep(0.3)
                assert len(seen) == 11, sorted(seen)
                seen = await retained(broker_url, f"{prefix}/#")  # all there: read as HA would
                state = await retained(broker_url, f"{topic_root}/#", quiet_s=1.0)

                for topic, message in seen.items():
                    assert message.retain, topic
                    m = CONFIG_TOPIC.match(topic)
                    assert m and m.group("prefix") == prefix, topic
                    config = json.loads(message.payload)
                    assert REQUIRED[m.group("component")] <= set(config), topic
                    assert config["unique_id"] == m.group("object_id")
                    assert set(config["device"]) >= DEVICE_KEYS
                    assert isinstance(config["device"]["identifiers"], list)
                    assert config["device"]["identifiers"]
                    for entry in config["availability"]:
                        assert set(entry) >= AVAILABILITY_KEYS
                        status = json.loads(state[entry["topic"]].payload)
                        assert status["state"] == entry["payload_available"]
                    source = json.loads(state[config["state_topic"]].payload)
                    assert render(config["value_template"], source) is not None
                    assert config["origin"]["name"] == "edgefleet"

                by_uid = {
                    json.loads(m.payload)["unique_id"]: json.loads(m.payload) for m in seen.values()
                }
                temps = [c for c in by_uid.values() if c.get("device_class") == "temperature"]
                assert len(temps) == 1 and temps[0]["device"]["name"] == "gw-0"
                assert (
                    render(
                        temps[0]["value_template"],
                        json.loads(state[temps[0]["state_topic"]].payload),
                    )
                    == 51.0
                )
                healthy = [c for c in by_uid.values() if c["name"] == "Healthy replicas"]
                assert (
                    render(
                        healthy[0]["value_template"],
                        json.loads(state[healthy[0]["state_topic"]].payload),
                    )
                    == 2
                )
                running = [c for c in by_uid.values() if c["name"] == "Workloads running"]
                assert (
                    sum(
                        render(c["value_template"], json.loads(state[c["state_topic"]].payload))
                        for c in running
                    )
                    == 2
                )

                # Deleting the app and forgetting a gateway remove their entities.
                assert (await op.call("delete", app="web"))["ok"]
                await nodes[1].stop()  # gone for good: nothing re-announces it
                await asyncio.sleep(0.3)
                orch.state.registry.forget("gw-1")
                left: dict[str, InboundMessage] = {}
                for _ in range(40):
                    left = await retained(broker_url, f"{prefix}/#")
                    if len(left) == 5:
                        break
                    await asyncio.sleep(0.3)
                names = {json.loads(m.payload)["device"]["name"] for m in left.values()}
                assert names == {"gw-0"}, names
        finally:
            task.cancel()
            for n in nodes:
                await n.stop()
