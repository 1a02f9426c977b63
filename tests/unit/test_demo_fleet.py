"""The demo's fixed story: its fleet, the agents' command lines, its choices and its view."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from edgefleet_agent.cli import build_parser, load_settings
from edgefleet_orchestrator.demo.fleet import (
    CAMERA_PROBE,
    DEMO_APPS,
    DEMO_FLEET,
    MOVING_APP,
    SCALE_TO,
    agent_argv,
    pick_victim,
)
from edgefleet_orchestrator.demo.view import (
    FleetView,
    all_healthy,
    node_converged,
    progress_line,
    running_on,
)
from edgefleet_protocol import (
    AppStatus,
    Desired,
    DesiredWorkload,
    NodeStatus,
    ReplicaStatus,
    Reported,
    Topics,
    WorkloadReport,
    WorkloadSpec,
    encode,
)
from edgefleet_protocol.manifest import load_manifest
from edgefleet_protocol.profiles import load_profiles

REPO = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(REPO / "device-profiles")
TOPICS = Topics()


def test_the_fleet_is_twelve_gateways_on_three_sites_from_shipped_profiles() -> None:
    sites: dict[str, int] = {}
    for node in DEMO_FLEET:
        sites[node.site] = sites.get(node.site, 0) + 1
        assert node.profile in PROFILES, node.profile
    assert sites == {"north": 4, "south": 4, "depot": 4}
    assert len({n.node for n in DEMO_FLEET}) == 12


def test_every_agent_command_line_is_accepted_by_the_real_agent_cli(tmp_path: Path) -> None:
    for node in DEMO_FLEET:
        argv = agent_argv(
            node,
            python="python3",
            broker_url="mqtt://127.0.0.1:1883",
            state_dir=tmp_path / node.node,
            profiles_dir=REPO / "device-profiles",
            camera_hub=("127.0.0.1", 4000),
        )
        assert argv[:3] == ["python3", "-m", "edgefleet_agent.cli"]
        settings = load_settings(build_parser().parse_args(argv[3:]), {})
        assert (settings.node, settings.site, settings.region) == (
            node.node,
            node.site,
            node.region,
        )
        assert settings.runtime == "process"
        assert settings.labels == {**node.labels, "demo-site": node.site}
        expected_probes = {CAMERA_PROBE} if node.near_cameras else set()
        assert set(settings.probes) == expected_probes


def test_video_analytics_qualifies_on_fewer_gateways_than_the_demo_scales_it_to() -> None:
    manifest = load_manifest((REPO / "examples/demo/video-analytics.yaml").read_text())
    minimum = manifest.placement.min_bandwidth_mbps
    assert minimum is not None
    qualifying = [
        n.node
        for n in DEMO_FLEET
        if n.near_cameras and (PROFILES[n.profile].link.bandwidth_mbps or 0) >= minimum
    ]
    assert len(qualifying) == 7
    assert manifest.placement.max_per_node == 1
    assert SCALE_TO > len(qualifying) > manifest.replicas  # type: ignore[operator]


def test_the_demo_apps_load_and_reschedule_within_seconds() -> None:
    for path, name in DEMO_APPS:
        manifest = load_manifest((REPO / path).read_text(), source=path)
        assert manifest.name == name
        if name == MOVING_APP:
            assert manifest.disconnect.grace_s <= 5


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ({"a": {"video"}, "b": {"video", "batch"}}, "a"),
        ({"b": {"video", "batch", "logs"}, "c": {"video", "logs"}, "a": {"video"}}, "c"),
        ({"b": {"video", "logs"}, "a": {"video", "logs"}}, "a"),
        ({"a": {"video", "batch"}}, "a"),
        ({"a": {"logs"}}, None),
        ({}, None),
    ],
    ids=[
        "avoids-slow-grace-apps",
        "prefers-more-apps",
        "breaks-ties-by-name",
        "takes-an-avoided-node-if-it-must",
        "needs-the-moving-app",
        "empty-fleet",
    ],
)
def test_the_victim_runs_the_moving_app_and_as_little_slow_grace_as_possible(
    hosts: dict[str, set[str]], expected: str | None
) -> None:
    assert pick_victim(hosts, moving_app="video", avoid={"batch"}) == expected


# -- the view ------------------------------------------------------------------------------

NOW = time.time()
SPEC = WorkloadSpec(runtime="process", command=["sleep", "1"])


def status(node: str, state: str, session: int = 1) -> NodeStatus:
    return NodeStatus(node=node, site="north", state=state, session=session, since=NOW)  # type: ignore[arg-type]


def reported(node: str, generation: int, **states: str) -> Reported:
    return Reported(
        node=node,
        observed_generation=generation,
        session=1,
        ts=NOW,
        workloads={
            name: WorkloadReport(spec_hash="h", state=state, since=NOW)  # type: ignore[arg-type]
            for name, state in states.items()
        },
    )


def desired(node: str, generation: int, *names: str) -> Desired:
    return Desired(
        node=node,
        generation=generation,
        issued_at=NOW,
        workloads=[DesiredWorkload(name=n, app="app", spec=SPEC, spec_hash="h") for n in names],
    )


def app(name: str, state: str, running: int, desired_count: int) -> AppStatus:
    return AppStatus(
        app=name,
        state=state,  # type: ignore[arg-type]
        desired=desired_count,
        placed=desired_count,
        running=running,
        replicas=[ReplicaStatus(name=f"{name}-0", node="north-1", state="running")],
        updated_at=NOW,
    )


def view_of(*messages: tuple[str, bytes]) -> FleetView:
    view = FleetView()
    for topic, payload in messages:
        view.apply(TOPICS.parse(topic), payload)
    return view


def test_an_empty_retained_payload_clears_what_the_view_knew() -> None:
    topic = TOPICS.node_status("north", "north-1")
    view = view_of((topic, encode(status("north-1", "online"))))
    assert set(view.nodes) == {"north-1"}
    assert view.apply(TOPICS.parse(topic), b"") is True
    assert view.nodes == {}


def test_a_deleted_app_status_leaves_the_view_and_a_bad_payload_is_only_counted() -> None:
    topic = TOPICS.app_status("video")
    view = view_of((topic, encode(app("video", "healthy", 1, 1))))
    assert all_healthy(view, ["video"])
    view.apply(TOPICS.parse(topic), encode(app("video", "deleted", 0, 1)))
    assert view.apps == {}
    assert view.apply(TOPICS.parse(topic), b"{not json") is False
    assert view.rejected == 1


@pytest.mark.parametrize(
    ("node_state", "report", "doc", "converged"),
    [
        ("online", reported("n", 2, a="running"), desired("n", 2, "a"), True),
        ("online", reported("n", 2, a="running", b="running"), desired("n", 2, "a"), False),
        ("online", reported("n", 2, a="running", b="stopped"), desired("n", 2, "a"), True),
        ("online", reported("n", 1, a="running"), desired("n", 2, "a"), False),
        ("offline", reported("n", 2, a="running"), desired("n", 2, "a"), False),
        ("online", reported("n", 2), desired("n", 2, "a"), False),
    ],
    ids=["exact", "leftover-running", "leftover-stopped", "older-generation", "offline", "missing"],
)
def test_a_node_has_converged_when_it_runs_exactly_its_desired_workloads(
    node_state: str, report: Reported, doc: Desired, converged: bool
) -> None:
    view = view_of(
        (TOPICS.node_status("north", "n"), encode(status("n", node_state))),
        (TOPICS.node_reported("north", "n"), encode(report)),
        (TOPICS.node_desired("north", "n"), encode(doc)),
    )
    assert node_converged(view, "n") is converged


def test_running_on_counts_only_workloads_that_hold_a_process() -> None:
    view = view_of(
        (TOPICS.node_reported("north", "n"), encode(reported("n", 1, a="running", b="stopped")))
    )
    assert running_on(view, "n") == {"a"}
    assert running_on(view, "elsewhere") == set()


def test_the_progress_line_shows_nodes_online_and_each_app() -> None:
    view = view_of(
        (TOPICS.node_status("north", "n"), encode(status("n", "online"))),
        (TOPICS.app_status("video"), encode(app("video", "progressing", 1, 3))),
        (TOPICS.app_status("logs"), encode(app("logs", "healthy", 2, 2))),
    )
    line = progress_line(view, ["video", "logs", "batch"], 12)
    assert line == "nodes 1/12 online | video 1/3 progressing | logs 2/2 ok | batch -"
