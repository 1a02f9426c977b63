"""The manifest's ``service`` block and ``uses`` list: what they accept, what they refuse
(with the field to change), and how they reach the workload spec an agent sees."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, host_ports, spec_hash
from edgefleet_protocol.manifest import AppManifest, load_manifest, with_replicas


def manifest(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "web",
        "replicas": 2,
        "workload": {"runtime": "process", "command": ["python3", "-m", "http.server", "8080"]},
    }
    return {**base, **extra}


def load(data: dict[str, Any]) -> AppManifest:
    return load_manifest(json.dumps(data), source="test")


def test_a_service_is_named_after_its_app_by_default_and_reaches_the_spec() -> None:
    app = load(manifest(service={"ports": [{"name": "http", "port": 8080}]}, uses=["db"]))
    assert app.service_name == "web"
    assert app.service is not None and app.service.topology == "prefer-site"
    binding = app.workload.service
    assert binding is not None
    assert (binding.name, dict(binding.ports), binding.mqtt_group) == ("web", {"http": 8080}, None)
    assert app.workload.uses == ["db"]


def test_an_explicit_service_name_and_group_travel_too() -> None:
    app = load(manifest(service={"name": "api", "ports": [{"port": 80}], "mqtt_group": "api"}))
    assert app.service_name == "api"
    assert app.workload.service is not None
    assert app.workload.service.ports == {"main": 80}
    assert app.workload.service.mqtt_group == "api"


def test_rescaling_keeps_the_binding_and_the_hash() -> None:
    app = load(manifest(service={"ports": [{"port": 8080}]}, uses=["db"]))
    again = with_replicas(app, 5)
    assert spec_hash(again.workload) == spec_hash(app.workload)


def test_an_app_without_service_keeps_its_spec_hash() -> None:
    plain = load(manifest())
    assert plain.workload.service is None and plain.workload.uses == []
    assert "service" not in plain.workload.model_dump(exclude_defaults=True)


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"service": {}}, "service.ports", "at least one port"),
        (
            {"service": {"ports": [{"port": 1}, {"port": 1, "name": "b"}]}},
            "service.ports",
            "more than once",
        ),
        ({"service": {"ports": [{"port": 80}], "topology": "nearest"}}, "service.topology", ""),
        ({"service": {"ports": [{"port": 80}], "protocol": "udp"}}, "service.protocol", ""),
        ({"service": {"ports": [{"port": 0}]}}, "service.ports.0.port", ""),
        ({"uses": ["db", "db"]}, "uses", "more than once"),
        ({"uses": ["Bad_Name"]}, "uses.0", ""),
        ({"service": {"ports": [{"port": 80}]}, "uses": ["web"]}, "uses", "own service"),
        ({"service": {"ports": [{"port": 80}], "portz": 1}}, "service", "unknown field"),
    ],
)
def test_bad_service_input_is_refused_with_its_field(
    extra: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        load(manifest(**extra))
    assert caught.value.field.startswith(field), caught.value.field
    assert words in caught.value.reason


def test_a_docker_service_port_must_be_published_on_the_host() -> None:
    docker = {"runtime": "docker", "image": "busybox", "ports": [{"container": 80, "host": 8080}]}
    with pytest.raises(ProtocolError) as caught:
        load(manifest(workload=docker, service={"ports": [{"port": 80}]}))
    assert caught.value.field == "service.ports.0.port"
    assert "host port" in caught.value.reason
    ok = load(manifest(workload=docker, service={"ports": [{"port": 8080}]}))
    assert host_ports(ok.workload) == {8080}


def test_service_and_uses_belong_beside_the_workload_not_inside() -> None:
    inside = manifest()
    inside["workload"] = {**inside["workload"], "uses": ["db"]}
    with pytest.raises(ProtocolError) as caught:
        load(inside)
    assert "beside workload" in caught.value.reason


def test_host_ports_are_a_process_services_ports_and_published_docker_ports() -> None:
    app = load(
        manifest(service={"ports": [{"name": "http", "port": 8080}, {"name": "m", "port": 9100}]})
    )
    assert host_ports(app.workload) == {8080, 9100}
    assert host_ports(load(manifest()).workload) == frozenset()
