"""What the demo runs: its fleet layout, the agents' command lines, and its choices.

Pure (plain values in, plain values out) so the story ``make demo`` tells is fixed and
testable; :mod:`edgefleet_orchestrator.demo.main` is the shell that acts on it.

The fleet: three sites of four gateways, each built from a profile in ``device-profiles/``.
Two plants in region ``eu`` sit next to a camera hub (a TCP listener the demo serves, which
their agents probe as ``camera-hub``); the depot, in region ``us``, has no cameras. So the
example apps meet real constraints: video analytics needs the camera hub within 50 ms and a
100 Mbit/s uplink (the Pi Zero 2 W's Wi-Fi is too slow), the EU sensor gateway needs region
``eu`` and the ``role=sensor-gateway`` label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CAMERA_PROBE = "camera-hub"


@dataclass(frozen=True, slots=True)
class DemoNode:
    node: str
    site: str
    profile: str
    region: str
    near_cameras: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def _site(
    site: str, region: str, near_cameras: bool, gateways: Sequence[tuple[str, bool]]
) -> list[DemoNode]:
    return [
        DemoNode(
            node=f"{site}-{i}",
            site=site,
            profile=profile,
            region=region,
            near_cameras=near_cameras,
            labels={"role": "sensor-gateway"} if sensor_gateway else {},
        )
        for i, (profile, sensor_gateway) in enumerate(gateways, start=1)
    ]


DEMO_FLEET: tuple[DemoNode, ...] = (
    *_site(
        "north",
        "eu",
        True,
        [
            ("raspberry-pi-5-8gb", True),
            ("raspberry-pi-4b-4gb", False),
            ("siemens-iot2050-advanced", True),
            ("jetson-orin-nano-8gb", False),
        ],
    ),
    *_site(
        "south",
        "eu",
        True,
        [
            ("intel-nuc13-pro-i5", False),
            ("raspberry-pi-4b-4gb", True),
            ("raspberry-pi-zero-2w", False),
            ("teltonika-rutx11", False),
        ],
    ),
    *_site(
        "depot",
        "us",
        False,
        [
            ("raspberry-pi-5-8gb", True),
            ("siemens-iot2050-advanced", False),
            ("raspberry-pi-zero-2w", False),
            ("teltonika-rutx11", False),
        ],
    ),
)

# The apps the demo deploys, as (path relative to the repo, app name). batch-job runs as
# the main example is; the others are the laptop-sized copies in examples/demo/ (see
# examples/demo/README.md for what differs and why).
DEMO_APPS: tuple[tuple[str, str], ...] = (
    ("examples/demo/video-analytics.yaml", "video-analytics"),
    ("examples/demo/sensor-gateway-eu.yaml", "sensor-gateway-eu"),
    ("examples/demo/log-shipper.yaml", "log-shipper"),
    ("examples/batch-job.yaml", "batch-job"),
)
MOVING_APP = "video-analytics"  # the app whose node the demo kills, and which it scales
# Seven gateways qualify for video analytics (the plants' four and three, less the Pi Zero),
# and max_per_node is 1: scaling to eight shows the orchestrator's reasons for the eighth.
SCALE_TO = 8
# Apps with a long disconnect grace (batch-job keeps the default 30 s): the demo avoids
# killing a node that hosts them, so the reschedule it shows takes seconds, not minutes.
SLOW_GRACE_APPS = frozenset({"batch-job"})


@dataclass(frozen=True, slots=True)
class AgentTiming:
    """Agent periods shortened for a demo (production defaults are minutes)."""

    heartbeat_s: float = 10.0
    sample_interval_s: float = 2.0
    probe_interval_s: float = 3.0
    reconcile_interval_s: float = 2.0


def agent_argv(
    node: DemoNode,
    *,
    python: str,
    broker_url: str,
    state_dir: Path,
    profiles_dir: Path,
    camera_hub: tuple[str, int] | None,
    timing: AgentTiming = AgentTiming(),
) -> list[str]:
    """The ``edgefleet-agent run`` command line for one demo gateway."""
    argv = [
        python,
        "-m",
        "edgefleet_agent.cli",
        "run",
        "--node",
        node.node,
        "--site",
        node.site,
        "--profile",
        node.profile,
        "--profiles-dir",
        str(profiles_dir),
        "--region",
        node.region,
        "--broker",
        broker_url,
        "--state-dir",
        str(state_dir),
        "--runtime",
        "process",
        "--heartbeat-s",
        f"{timing.heartbeat_s:g}",
        "--sample-interval-s",
        f"{timing.sample_interval_s:g}",
        "--probe-interval-s",
        f"{timing.probe_interval_s:g}",
        "--reconcile-interval-s",
        f"{timing.reconcile_interval_s:g}",
        "--log-level",
        "warning",
    ]
    for key, value in sorted(node.labels.items()):
        argv += ["--label", f"{key}={value}"]
    argv += ["--label", f"demo-site={node.site}"]
    if node.near_cameras and camera_hub is not None:
        host, port = camera_hub
        argv += ["--probe", f"{CAMERA_PROBE}={host}:{port}"]
    return argv


def pick_victim(
    hosts: Mapping[str, Iterable[str]], *, moving_app: str, avoid: Iterable[str]
) -> str | None:
    """The node the demo kills: one that runs a replica of ``moving_app``, preferring nodes
    that run nothing of the ``avoid`` apps, then nodes running more apps (a richer
    reschedule), then the name (so the choice is stable). ``hosts`` maps node -> the apps
    it runs."""
    avoided = set(avoid)
    candidates = [
        (bool(avoided & set(apps)), -len(set(apps)), node)
        for node, apps in hosts.items()
        if moving_app in set(apps)
    ]
    return min(candidates)[2] if candidates else None


def format_seconds(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"
