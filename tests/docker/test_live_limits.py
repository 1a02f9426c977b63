"""Live limits end to end: the orchestrator sizes a replica from its real usage, and the
REAL agent applies each new limit to the SAME container, where it shows in the cgroup.

A busybox container spins on the CPU with ``resources: {cpu: 0.1, memory_mb: 64, auto:
{min_cpu: 0.1, max_cpu: 0.4, min_memory_mb: 32, max_memory_mb: 128}}``. Throttled at its
limit, it uses all of it, so every resize raises the CPU limit (toward 0.4); it uses almost
no memory, so its memory limit drops to the 32 MB floor. Needs mosquitto and dockerd.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from harness.fleet import Operator, eventually, running_orchestrator

AGENT = Path(sys.executable).parent / "edgefleet-agent"
SPIN = ["sh", "-c", "while :; do :; done"]


@pytest.fixture
def node() -> str:
    return f"n{uuid.uuid4().hex[:10]}"


@pytest.fixture
def agent(
    node: str, tmp_path: Path, broker_url: str, topic_root: str, test_image: str
) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        str(AGENT), "run", "--node", node, "--site", "s1", "--broker", broker_url,
        "--root", topic_root, "--state-dir", str(tmp_path / "agent"), "--runtime", "docker",
        "--reconcile-interval-s", "0.5", "--sample-interval-s", "0.5", "--heartbeat-s", "2",
        "--keepalive-s", "5",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    with open(tmp_path / "agent.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    yield proc
    proc.kill()
    proc.wait(timeout=10)
    client = docker.from_env(timeout=30)
    for container in client.containers.list(
        all=True, filters={"label": f"io.edgefleet.node={node}"}
    ):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    client.close()


def orchestrator(url: str, root: str, data_dir: Path, **extra: Any) -> Any:
    return running_orchestrator(
        url, root, data_dir, **{"scaling_interval_s": 0.5, "resize_cooldown_s": 1.0, **extra}
    )


def the_container(node: str) -> Any:
    client = docker.from_env(timeout=30)
    try:
        (found,) = client.containers.list(filters={"label": f"io.edgefleet.node={node}"})
        return found
    finally:
        client.close()


def limits_inside(container: Any) -> tuple[float, int]:
    """(cpu cores, memory bytes) as the container's own cgroup files say (v1 or v2)."""
    script = (
        "if [ -f /sys/fs/cgroup/cpu.max ]; then"
        " cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max;"
        " else cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"
        " /sys/fs/cgroup/memory/memory.limit_in_bytes; fi"
    )
    code, output = container.exec_run(["sh", "-c", script])
    assert code == 0, output
    words = output.decode().split()
    quota, period, memory = int(words[0]), int(words[1]), int(words[2])
    return round(quota / period, 3), memory


async def test_a_resize_is_applied_live_to_the_same_container_and_shows_in_its_cgroup(
    node: str,
    agent: subprocess.Popen[bytes],
    broker_url: str,
    topic_root: str,
    tmp_path: Path,
    test_image: str,
) -> None:
    manifest = {
        "name": "spin",
        "replicas": 1,
        "workload": {
            "runtime": "docker", "image": test_image, "command": SPIN, "stop_timeout_s": 1,
            "resources": {"cpu": 0.1, "memory_mb": 64, "auto": {
                "min_cpu": 0.1, "max_cpu": 0.4, "min_memory_mb": 32, "max_memory_mb": 128}},
        },
    }  # fmt: skip
    async with (
        orchestrator(broker_url, topic_root, tmp_path / "orch") as orch,
        Operator(broker_url, topic_root) as op,
    ):
        await eventually(lambda: node in orch.state.registry.nodes, timeout_s=30, what="agent")
        assert (await op.call("deploy", manifest=manifest))["ok"]
        await eventually(
            lambda: (
                orch.state.statuses.get("spin") is not None
                and orch.state.statuses["spin"].running == 1
            ),
            timeout_s=60,
            what="the replica runs",
        )
        container = await asyncio.to_thread(the_container, node)
        first_id = container.id
        assert await asyncio.to_thread(limits_inside, container) == (0.1, 64 * 2**20)

        seen: list[tuple[float, int]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now_limits = await asyncio.to_thread(limits_inside, container)
            if not seen or seen[-1] != now_limits:
                seen.append(now_limits)
            if now_limits[0] >= 0.4 - 1e-9 and now_limits[1] == 32 * 2**20:
                break
            await asyncio.sleep(0.5)
        print(f"limits seen inside the container: {seen}")
        assert seen[-1] == (0.4, 32 * 2**20), f"limits seen inside the container: {seen}"
        cpus = [cpu for cpu, _ in seen]
        assert cpus == sorted(cpus) and len(set(cpus)) >= 3, f"grew step by step: {seen}"

        after = await asyncio.to_thread(the_container, node)
        assert after.id == first_id, "same container: applied live, no restart"
        (replica,) = [a for a in orch.state.assignments if a.app == "spin"]
        assert (replica.cpu, replica.memory_mb) == (0.4, 32), "placement holds the new size"
        status = orch.state.statuses["spin"]
        assert (status.replicas[0].cpu, status.replicas[0].memory_mb) == (0.4, 32)
        reported = orch.state.registry.nodes[node].reported
        assert reported is not None and reported.workloads["spin-0"].restarts == 0
