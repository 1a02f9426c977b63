"""Home Assistant MQTT discovery: each gateway and each app appears as a device.

Opt-in (``edgefleet orchestrator run --homeassistant``). :func:`discovery` is pure: from
the live state it builds every retained message Home Assistant should see — one config per
entity on ``<prefix>/<component>/<object_id>/config`` (HA's single-component discovery
schema: ``unique_id``, ``device``, ``availability``, ``origin``, ``state_topic``), and one
state document per gateway on ``<root>/homeassistant/nodes/{site}/{node}`` with the
orchestrator's merged telemetry (agents send telemetry by exception, so a raw telemetry
message may lack a value; this document never does). App entities read the retained app
status topic directly. :class:`HomeAssistantExporter` is the shell: every ``interval_s``
it publishes what changed (retained) and clears, with an empty retained payload, every
config and state it published before that is no longer wanted (a deleted app, a node the
orchestrator forgot, a temperature no longer reported), which is how HA removes an
entity. A failure is logged and retried next round; it never reaches the service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgefleet_protocol import AppStatus, Topics
from edgefleet_protocol.session import Publication

from edgefleet_orchestrator import __version__
from edgefleet_orchestrator.fleet.registry import NodeRecord

if TYPE_CHECKING:
    from edgefleet_orchestrator.service.orchestrator import Orchestrator

log = logging.getLogger("edgefleet.homeassistant")

DEFAULT_PREFIX = "homeassistant"
TEMPERATURE_METRIC = "temperature_c"
"""The telemetry metric a gateway reports its temperature in (°C), when it has one."""
ORIGIN = {"name": "edgefleet", "sw_version": __version__}
_NOT_OBJECT_ID = re.compile(r"[^a-zA-Z0-9_-]")

# Gateway sensors: (key, name, unit, device_class, icon). Each is offered once the node
# has reported the value; temperature only where a gateway reports it.
NODE_SENSORS: tuple[tuple[str, str, str | None, str | None, str | None], ...] = (
    ("cpu_pct", "CPU", "%", None, "mdi:cpu-64-bit"),
    ("memory_pct", "Memory", "%", None, "mdi:memory"),
    ("disk_pct", "Disk", "%", None, "mdi:harddisk"),
    ("temperature_c", "Temperature", "°C", "temperature", None),
    ("workloads_running", "Workloads running", None, None, "mdi:application-cog"),
)


def object_id(*parts: str) -> str:
    """An HA object id (``[a-zA-Z0-9_-]``), also used as the entity's ``unique_id``."""
    return _NOT_OBJECT_ID.sub("_", "_".join(parts))


def node_state(record: NodeRecord) -> dict[str, Any]:
    """The values HA shows for a gateway, only those known (never ``null``)."""
    t = record.telemetry
    values: dict[str, Any] = {
        "cpu_pct": t.cpu_pct,
        "memory_pct": t.memory_pct,
        "disk_pct": t.disk_pct,
        "temperature_c": t.metrics.get(TEMPERATURE_METRIC),
    }
    if record.reported is not None:
        values["workloads_running"] = sum(
            1 for w in record.reported.workloads.values() if w.state == "running"
        )
    return {
        k: round(v, 2) if isinstance(v, float) else v for k, v in values.items() if v is not None
    }


def _payload(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def discovery(
    nodes: Mapping[str, NodeRecord],
    apps: Mapping[str, AppStatus],
    *,
    root: str,
    prefix: str = DEFAULT_PREFIX,
) -> dict[str, bytes]:
    """Every retained message HA should see now: topic → payload."""
    topics = Topics(root)
    fleet = object_id("edgefleet", root)
    out: dict[str, bytes] = {}
    for record in nodes.values():
        state_topic = f"{topics.root}/homeassistant/nodes/{record.site}/{record.node}"
        state = node_state(record)
        out[state_topic] = _payload(state)
        caps = record.capabilities
        device: dict[str, Any] = {
            "identifiers": [object_id(fleet, "node", record.site, record.node)],
            "name": record.node,
            "manufacturer": "edgefleet",
            "model": (caps.profile if caps and caps.profile else "gateway"),
            "suggested_area": record.site,
        }
        availability = [
            {
                "topic": topics.node_status(record.site, record.node),
                "value_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]
        for key, name, unit, device_class, icon in NODE_SENSORS:
            if key not in state:
                continue
            uid = object_id(fleet, record.site, record.node, key)
            config: dict[str, Any] = {
                "name": name,
                "unique_id": uid,
                "state_topic": state_topic,
                "value_template": f"{{{{ value_json.{key} }}}}",
                "state_class": "measurement",
                "device": device,
                "availability": availability,
                "origin": ORIGIN,
            }
            if unit:
                config["unit_of_measurement"] = unit
            if device_class:
                config["device_class"] = device_class
            if icon:
                config["icon"] = icon
            out[f"{prefix}/sensor/{uid}/config"] = _payload(config)
    for app, status in apps.items():
        device = {
            "identifiers": [object_id(fleet, "app", app)],
            "name": app,
            "manufacturer": "edgefleet",
            "model": f"{status.mode} app",
        }
        for key, name in (("running", "Healthy replicas"), ("desired", "Desired replicas")):
            uid = object_id(fleet, "app", app, key)
            config = {
                "name": name,
                "unique_id": uid,
                "state_topic": topics.app_status(app),
                "value_template": f"{{{{ value_json.{key} }}}}",
                "state_class": "measurement",
                "icon": "mdi:counter",
                "device": device,
                "availability": [
                    {
                        "topic": topics.orchestrator_status(),
                        "value_template": "{{ value_json.state }}",
                        "payload_available": "online",
                        "payload_not_available": "offline",
                    }
                ],
                "origin": ORIGIN,
            }
            out[f"{prefix}/sensor/{uid}/config"] = _payload(config)
    return out


class HomeAssistantExporter:
    """Keeps HA's retained discovery messages equal to :func:`discovery` of the live state."""

    def __init__(
        self, orchestrator: Orchestrator, *, prefix: str = DEFAULT_PREFIX, interval_s: float = 2.0
    ) -> None:
        self._orch = orchestrator
        self._prefix = prefix
        self._interval_s = interval_s
        self._published: dict[str, bytes] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.publish_changes()
            except Exception:  # never the service's problem; next round tries again
                log.exception("home assistant discovery round failed")
            await asyncio.sleep(self._interval_s)

    async def publish_changes(self) -> None:
        """One round: publish what changed, clear what is gone. A message the broker did
        not take (disconnected) is tried again next round."""
        orch = self._orch
        if not orch.session.connected.is_set():
            return
        statuses = {name: s for name, s in orch.state.statuses.items() if s.state != "deleted"}
        wanted = discovery(
            orch.state.registry.nodes, statuses, root=orch.topics.root, prefix=self._prefix
        )
        gone = [t for t in self._published if t not in wanted]
        # Configs are cleared before their state, so HA never reads a state it has no entity for.
        for topic in sorted(gone, key=lambda t: not t.endswith("/config")):
            if await orch.session.publish(Publication(topic=topic, payload=b"", retain=True)):
                del self._published[topic]
        # States before configs: an entity HA creates finds its value already retained.
        for topic in sorted(wanted, key=lambda t: t.endswith("/config")):
            payload = wanted[topic]
            if self._published.get(topic) == payload:
                continue
            if await orch.session.publish(Publication(topic=topic, payload=payload, retain=True)):
                self._published[topic] = payload
