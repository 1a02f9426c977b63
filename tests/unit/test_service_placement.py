"""Services in the orchestrator's decisions: a host port held on a node keeps another
replica that needs it off that node (with the reason), and a second app claiming a service
name is refused at deploy with nothing changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement import Assignment, NodeView, place_all
from edgefleet_orchestrator.service.commands import CommandFailed, ControlState, handle
from edgefleet_orchestrator.store.sqlite import SqliteStore, open_store
from edgefleet_protocol import validate
from edgefleet_protocol.commands import ErrorCode, parse_command
from edgefleet_protocol.manifest import AppManifest


def app(name: str, replicas: int, port: int | None, **extra: Any) -> AppManifest:
    data: dict[str, Any] = {
        "name": name,
        "replicas": replicas,
        "workload": {"runtime": "process", "command": ["sleep", "infinity"]},
        **extra,
    }
    if port is not None:
        data["service"] = {"ports": [{"name": "http", "port": port}]}
    return validate(AppManifest, data, forbid_unknown=True)


def node(name: str) -> NodeView:
    return NodeView(
        node=name, site="s1", ready=True, cordoned=False, arch="x86_64",
        runtimes=frozenset({"process"}), cpu_cores=4.0, memory_mb=4096, region="eu",
    )  # fmt: skip


def test_two_replicas_of_one_port_never_share_a_node_and_the_rest_says_why() -> None:
    nodes = [node("a"), node("b")]
    result = place_all([app("web", 3, 8080)], nodes, [])["web"]
    assert sorted(a.node for a in result.assignments) == ["a", "b"]
    assert [u.count for u in result.unplaced] == [1]
    assert result.unplaced[0].reasons == ["2 nodes: host port 8080 taken"]


def test_a_port_another_app_holds_filters_the_node_without_moving_that_app() -> None:
    nodes = [node("a"), node("b")]
    holder = app("api", 1, 8080)
    running = [Assignment("api-0", "api", "a", "s1", 0.1, 64)]
    placed = place_all([holder, app("web", 1, 8080)], nodes, running)
    assert [(a.replica, a.node) for a in placed["api"].assignments] == [("api-0", "a")]
    assert [a.node for a in placed["web"].assignments] == ["b"]


def test_apps_on_different_ports_share_nodes() -> None:
    nodes = [node("a")]
    placed = place_all([app("api", 1, 8080), app("web", 1, 8081), app("job", 2, None)], nodes, [])
    assert all(len(p.assignments) == p.desired for p in placed.values())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = open_store(tmp_path, synchronous="NORMAL")
    yield opened
    opened.close()


def deploy(state: ControlState, store: SqliteStore, manifest: dict[str, Any]) -> Any:
    _, parsed = parse_command(
        "deploy", json.dumps({"v": 1, "request_id": "r", "manifest": manifest})
    )
    with store.transaction():
        return handle("deploy", parsed, state, store)


def test_a_second_app_claiming_a_service_name_is_refused_and_changes_nothing(
    store: SqliteStore,
) -> None:
    state = ControlState(apps={}, registry=Registry(), assignments=[], clock=lambda: 1.0)
    first = {"name": "web", "replicas": 1, "workload": {"runtime": "simulated"},
             "service": {"ports": [{"port": 80}]}}  # fmt: skip
    deploy(state, store, first)
    second = {**first, "name": "web2", "service": {"name": "web", "ports": [{"port": 81}]}}
    with pytest.raises(CommandFailed) as caught:
        deploy(state, store, second)
    assert caught.value.code is ErrorCode.CONFLICT
    assert "already offered by app web" in caught.value.message
    assert caught.value.details["field"] == "manifest.service.name"
    assert set(state.apps) == {"web"}
    assert set(store.load().apps) == {"web"}
    # Redeploying the holder itself is fine, and so is another name.
    assert deploy(state, store, first).result["action"] == "unchanged"
    renamed = {**second, "service": {"name": "web-two", "ports": [{"port": 81}]}}
    assert deploy(state, store, renamed).result["action"] == "created"
