"""Operator CLI decisions and views: when ``deploy --wait`` stops, how the fleet view takes
status messages in, and what people see."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_cli.client import (
    FleetSnapshot,
    converged,
    expected_replicas,
    fleet_filters,
)
from edgefleet_cli.views import (
    apps_view,
    done_line,
    fleet_view,
    node_view,
    nodes_view,
    status_view,
)
from edgefleet_protocol import AppStatus, ReplicaStatus, Topics, Unplaced
from edgefleet_protocol.session import InboundMessage
from rich.console import Console, RenderableType


def status(
    state: str = "healthy",
    desired: int = 2,
    running: int = 2,
    unplaced: list[Unplaced] | None = None,
) -> AppStatus:
    return AppStatus(
        app="cam",
        state=state,
        desired=desired,
        placed=desired - sum(u.count for u in unplaced or []),
        running=running,
        replicas=[
            ReplicaStatus(name=f"cam-{i}", node=f"gw{i}", state="running") for i in range(running)
        ],
        unplaced=unplaced or [],
        updated_at=1.0,
    )


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"replicas": 3}, 3),
        ({"replicas": 0}, 0),
        ({"mode": "daemon"}, None),
        ({}, None),
        ({"replicas": True}, None),
        ({"replicas": "3"}, None),
    ],
)
def test_expected_replicas_are_known_only_for_a_replicated_count(
    manifest: dict[str, Any], expected: int | None
) -> None:
    assert expected_replicas(manifest) == expected


@pytest.mark.parametrize(
    ("current", "kwargs", "done"),
    [
        (status(), {"action": "created", "fresh": True}, True),
        (None, {"action": "created", "fresh": False}, False),
        (status("progressing", running=1), {"action": "created", "fresh": True}, False),
        (status(state="deleted"), {"action": "created", "fresh": True}, False),
        (
            status("degraded", running=1, unplaced=[Unplaced(count=1, reasons=["x"])]),
            {"action": "created", "fresh": True},
            False,
        ),
        (status(desired=2), {"action": "created", "fresh": True, "expected": 3}, False),
        (status(), {"action": "updated", "fresh": False, "since_reply_s": 0.5}, False),
        (status(), {"action": "updated", "fresh": True, "since_reply_s": 0.5}, True),
        (status(), {"action": "updated", "fresh": False, "since_reply_s": 5.0}, True),
        (status(), {"action": "unchanged", "fresh": False, "since_reply_s": 0.0}, True),
        (status(desired=0, running=0), {"action": "created", "fresh": True, "expected": 0}, True),
    ],
    ids=[
        "all running",
        "no status yet",
        "still starting",
        "a deleted app's last word",
        "a replica has no place",
        "status from before a scale-up",
        "an update: the retained status may be the old version's",
        "an update: a status after the reply counts",
        "an update whose status did not change: trusted after the settle time",
        "unchanged: the retained status is current",
        "zero replicas is converged",
    ],
)
def test_deploy_wait_stops_only_when_every_wanted_replica_runs(
    current: AppStatus | None, kwargs: dict[str, Any], done: bool
) -> None:
    args: dict[str, Any] = {"expected": 2, "since_reply_s": 0.0, **kwargs}
    assert converged(current, **args) is done


ROOT = "fleet/v1"
TOPICS = Topics(ROOT)


def message(topic: str, payload: str = "", retain: bool = True) -> InboundMessage:
    return InboundMessage(topic=topic, payload=payload.encode(), qos=1, retain=retain)


def test_the_snapshot_keeps_the_latest_of_each_status_and_forgets_cleared_ones() -> None:
    snap = FleetSnapshot()
    app_topic = TOPICS.app_status("cam")
    assert snap.apply(TOPICS, message(app_topic, status().model_dump_json()))
    assert snap.apply(TOPICS, message(TOPICS.orchestrator_status(), '{"state":"online","since":1}'))
    node = '{"node":"gw1","site":"s1","state":"online","session":3,"since":1}'
    assert snap.apply(TOPICS, message(TOPICS.node_status("s1", "gw1"), node))
    assert snap.apps["cam"].running == 2
    assert snap.nodes[("s1", "gw1")].session == 3
    assert snap.orchestrator is not None and snap.orchestrator.state == "online"
    assert snap.apply(TOPICS, message(app_topic, ""))  # a deleted app's status is cleared
    assert "cam" not in snap.apps
    assert snap.app_updates == {"cam": 2}
    assert snap.as_json()["nodes"][0]["node"] == "gw1"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"{ROOT}/apps/cam/status", "not json"),
        (f"{ROOT}/apps/Bad_Name/status", "{}"),
        (f"{ROOT}/fleet/summary", '{"v": 2}'),
        ("other/root/fleet/summary", "{}"),
    ],
)
def test_a_bad_status_message_is_counted_and_changes_nothing(topic: str, payload: str) -> None:
    snap = FleetSnapshot()
    assert not snap.apply(TOPICS, message(topic, payload))
    assert snap.rejected == 1
    assert snap.as_json() == FleetSnapshot().as_json()


def test_watch_follows_summary_apps_and_node_presence() -> None:
    assert fleet_filters(TOPICS) == [
        f"{ROOT}/fleet/summary",
        f"{ROOT}/apps/+/status",
        f"{ROOT}/nodes/+/+/status",
    ]


def text(renderable: RenderableType | str) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_an_app_status_shows_each_replica_and_every_reason_a_replica_is_not_placed() -> None:
    shown = text(
        status_view(
            status(
                "degraded",
                desired=3,
                running=1,
                unplaced=[Unplaced(count=2, reasons=["3 nodes: label role=x required"])],
            )
        )
    )
    assert "running 1/3" in shown
    assert "cam-0" in shown and "gw0" in shown
    assert "2 replicas not placed:" in shown
    assert "  - 3 nodes: label role=x required" in shown


def test_a_flapping_node_is_marked_in_the_nodes_table_and_the_node_view() -> None:
    rows = [
        {"node": "gw1", "site": "s1", "state": "online", "flapping": True, "replicas": 1},
        {"node": "gw2", "site": "s1", "state": "online", "flapping": False, "replicas": 1},
    ]
    lines = text(nodes_view({"nodes": rows})).splitlines()
    assert "online (flapping)" in next(line for line in lines if "gw1" in line)
    assert "flapping" not in next(line for line in lines if "gw2" in line)
    shown = text(node_view({"node": "gw1", "state": "online", "flapping": True, "workloads": {}}))
    assert "flapping" in shown


def test_tables_escape_what_came_off_the_wire() -> None:
    shown = text(apps_view({"apps": [{"app": "[bold]x", "state": "healthy"}]}))
    assert "[bold]x" in shown


@pytest.mark.parametrize(
    ("renderable", "says"),
    [
        (apps_view({"apps": []}), "no apps deployed"),
        (nodes_view({"nodes": []}), "no nodes known"),
        (node_view({"node": "gw1", "workloads": {}}), "no workloads reported"),
        (fleet_view(FleetSnapshot(), ROOT, now=0), "orchestrator absent"),
        (fleet_view(FleetSnapshot(), ROOT, now=0), "no fleet summary published yet"),
    ],
)
def test_empty_results_say_so_in_words(renderable: RenderableType, says: str) -> None:
    assert says in text(renderable)


@pytest.mark.parametrize(
    ("verb", "result", "line"),
    [
        ("deploy", {"app": "a", "action": "created", "version": 1}, "created app a (version 1)"),
        ("delete", {"app": "a", "action": "deleted"}, "deleted app a"),
        ("scale", {"app": "a", "replicas": 3, "previous": 1}, "scaled app a: 1 -> 3 replicas"),
        ("cordon", {"node": "n", "cordoned": True, "changed": True}, "cordoned node n"),
        (
            "cordon",
            {"node": "n", "cordoned": True, "changed": False},
            "node n was already cordoned",
        ),
        ("uncordon", {"node": "n", "cordoned": False, "changed": True}, "uncordoned node n"),
    ],
)
def test_a_change_is_confirmed_in_one_line(verb: str, result: dict[str, Any], line: str) -> None:
    assert done_line(verb, result) == line
