"""What people see of scaling in the CLI: a drain's progress (what moves, waits, is stuck
and why), the drain reply line, an autoscaled app's status and sized replicas' limits."""

from __future__ import annotations

from typing import Any

from edgefleet_cli.views import (
    done_line,
    drain_lines,
    drain_view,
    node_view,
    nodes_view,
    status_view,
)
from edgefleet_protocol import AppStatus, AutoscaleStatus, ReplicaStatus
from rich.console import Console, RenderableType


def text(renderable: RenderableType | str) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


PROGRESS: dict[str, Any] = {
    "node": "gw1",
    "state": "draining",
    "started_at": 1.0,
    "max_unavailable": 1,
    "remaining": 3,
    "moving": [{"app": "web", "replica": "web-1", "to": "gw3", "state": "starting"}],
    "waiting": [
        {"app": "web", "replica": "web-0", "reason": "max_unavailable 1 reached for app web"}
    ],
    "stuck": [{"app": "big", "replica": "big-0", "reasons": ["2 nodes: not enough memory"]}],
    "daemons": ["logs-gw1"],
}


def test_a_drain_shows_what_moves_what_waits_and_what_is_stuck_with_why() -> None:
    shown = text(drain_view(PROGRESS))
    assert "drain of node gw1: draining, 3 replicas left" in shown
    assert "web-1" in shown and "gw3" in shown and "starting" in shown
    assert "waiting: web-0 (web): max_unavailable 1 reached for app web" in shown
    assert "stuck: big-0 (big) stays running:" in shown
    assert "- 2 nodes: not enough memory" in shown
    assert "daemon replicas stay on the node: logs-gw1" in shown


def test_the_lines_of_a_drain_that_cannot_finish_name_each_replica_and_reason() -> None:
    assert drain_lines(PROGRESS) == [
        "  waiting: web-0 (web): max_unavailable 1 reached for app web",
        "  stuck: big-0 (big) stays running:",
        "    - 2 nodes: not enough memory",
    ]


def test_the_drain_reply_and_uncordon_lines() -> None:
    started = {**PROGRESS, "action": "started"}
    assert done_line("drain", started) == "drain of node gw1 started: draining, 3 replica(s) left"
    cancelled = {"node": "gw1", "cordoned": False, "changed": True, "drain_cancelled": True}
    assert done_line("uncordon", cancelled) == "uncordoned node gw1 (its drain is cancelled)"


def test_nodes_and_node_show_a_drain() -> None:
    row = {"node": "gw1", "site": "s1", "state": "online", "cordoned": True, "drain": "stuck"}
    assert "yes (stuck)" in text(nodes_view({"nodes": [row]}))
    shown = text(node_view({**row, "drain": PROGRESS, "workloads": {}}))
    assert "drain of node gw1: draining" in shown


def test_an_autoscaled_app_shows_its_metric_verdict_and_each_replicas_limits() -> None:
    status = AppStatus(
        app="ingest",
        state="healthy",
        desired=2,
        placed=2,
        running=2,
        replicas=[
            ReplicaStatus(name="ingest-0", node="gw1", state="running", cpu=0.4, memory_mb=96),
            ReplicaStatus(name="ingest-1", node="gw2", state="retiring", message="old copy"),
        ],
        autoscale=AutoscaleStatus(
            metric="queue.depth",
            target=10,
            observed=31.5,
            samples=2,
            min=1,
            max=8,
            wanted=8,
            replicas=2,
            state="limited",
            reason="asks for 8; only 2 can be placed",
            limited_by=["3 nodes: max 1 replica per node"],
        ),
        updated_at=1.0,
    )
    shown = text(status_view(status))
    assert "autoscale queue.depth 31.5/10 (1..8, wants 8)  limited" in shown
    assert "- 3 nodes: max 1 replica per node" in shown
    assert "0.4 cpu, 96 MB" in shown
    assert "retiring" in shown
