"""The scaling side of the command handlers, on a real store: an autoscaled app's count is
the autoscaler's (``scale`` refused, a redeploy keeps it), ``drain`` cordons and records a
drain that survives in the store, repeats answer with progress, ``uncordon`` ends it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.service.commands import CommandFailed, ControlState, handle
from edgefleet_orchestrator.store.sqlite import SqliteStore, open_store
from edgefleet_protocol import Capabilities, NodeStatus, TopicKind
from edgefleet_protocol.commands import ErrorCode, parse_command

AUTOSCALED: dict[str, Any] = {
    "name": "q",
    "workload": {"runtime": "simulated"},
    "autoscale": {"metric": "depth", "target": 10, "min": 1, "max": 6},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = open_store(tmp_path, synchronous="NORMAL")
    yield opened
    opened.close()


@pytest.fixture
def state() -> ControlState:
    registry = Registry()
    for node in ("n1", "n2"):
        caps = Capabilities(
            node=node, site="s1", arch="x86_64", cpu_cores=2, memory_mb=1024, disk_mb=1,
            runtimes=["simulated"],
        )  # fmt: skip
        registry.ingest(TopicKind.NODE_CAPABILITIES, "s1", node, caps, 1.0)
        status = NodeStatus(node=node, site="s1", state="online", session=1, since=1.0)
        registry.ingest(TopicKind.NODE_STATUS, "s1", node, status, 1.0)
    return ControlState(apps={}, registry=registry, assignments=[], clock=lambda: 500.0)


def run(verb: str, state: ControlState, store: SqliteStore, **args: Any) -> Any:
    _, parsed = parse_command(verb, json.dumps({"v": 1, "request_id": "r", **args}))
    with store.transaction():
        return handle(verb, parsed, state, store)


def test_an_autoscaled_app_keeps_its_count_through_a_redeploy(
    state: ControlState, store: SqliteStore
) -> None:
    assert run("deploy", state, store, manifest=AUTOSCALED).result["action"] == "created"
    assert state.apps["q"].replicas == 1
    state.apps["q"] = state.apps["q"].model_copy(update={"replicas": 4})  # the autoscaler
    tighter = {**AUTOSCALED, "autoscale": {**AUTOSCALED["autoscale"], "max": 3}}
    outcome = run("deploy", state, store, manifest=tighter)
    assert outcome.result["action"] == "updated"
    assert state.apps["q"].replicas == 3, "kept, within the new bounds"
    explicit = run("deploy", state, store, manifest={**tighter, "replicas": 2})
    assert explicit.result["action"] == "updated" and state.apps["q"].replicas == 2


def test_scaling_an_autoscaled_app_is_a_conflict_that_says_what_to_do(
    state: ControlState, store: SqliteStore
) -> None:
    run("deploy", state, store, manifest=AUTOSCALED)
    with pytest.raises(CommandFailed) as caught:
        run("scale", state, store, app="q", replicas=3)
    assert caught.value.code is ErrorCode.CONFLICT
    assert "autoscaled on depth between 1 and 6" in caught.value.message
    assert state.apps["q"].replicas == 1


def test_drain_cordons_records_and_answers_repeats_with_progress(
    state: ControlState, store: SqliteStore
) -> None:
    run("deploy", state, store, manifest={"name": "w", "replicas": 1,
                                          "workload": {"runtime": "simulated"}})  # fmt: skip
    state.assignments = [Assignment("w-0", "w", "n1", "s1", 0.1, 64)]
    first = run("drain", state, store, node="n1")
    assert first.placement_changed
    assert first.result == {
        "node": "n1", "action": "started", "state": "draining", "started_at": 500.0,
        "max_unavailable": None, "remaining": 1, "moving": [], "waiting": [], "stuck": [],
        "daemons": [],
    }  # fmt: skip
    assert state.registry.nodes["n1"].cordoned
    snapshot = store.load()
    assert "n1" in snapshot.cordoned and snapshot.drains["n1"].started_at == 500.0
    again = run("drain", state, store, node="n1")
    assert (again.result["action"], again.placement_changed) == ("unchanged", False)
    tighter = run("drain", state, store, node="n1", max_unavailable=2)
    assert tighter.result["action"] == "updated"
    assert store.load().drains["n1"].max_unavailable == 2
    row = run("node", state, store, node="n1").result
    assert row["drain"]["state"] == "draining"
    assert run("nodes", state, store).result["nodes"][0]["drain"] == "draining"


def test_uncordon_ends_a_drain(state: ControlState, store: SqliteStore) -> None:
    run("drain", state, store, node="n2")
    outcome = run("uncordon", state, store, node="n2")
    assert outcome.result["drain_cancelled"] is True
    assert "n2" not in state.control.drains and "n2" not in store.load().drains
    assert not state.registry.nodes["n2"].cordoned
    assert run("node", state, store, node="n2").result["drain"] is None


def test_draining_an_unknown_node_changes_nothing(state: ControlState, store: SqliteStore) -> None:
    with pytest.raises(CommandFailed) as caught:
        run("drain", state, store, node="ghost")
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert dict(store.load().drains) == {} and state.control.drains == {}
