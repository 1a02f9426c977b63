"""The REAL agent with the Docker runtime against a real dockerd and mosquitto: apply, a
live resource update on the same container, adoption after kill -9, removal.

Needs both tiers (broker and docker); the local busybox test image is built without any
registry (tests/harness/images.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.images import ImageUnavailable, ensure_test_image
from test_agent_harness import AgentProcess, Watcher, all_running, desired_doc, workload

pytestmark = pytest.mark.docker


@pytest.fixture
def image(docker_ready: None) -> str:
    try:
        return ensure_test_image()
    except ImageUnavailable as exc:
        pytest.fail(f"cannot build the docker test image: {exc}", pytrace=False)


@pytest.fixture
def agent(tmp_path: Path, broker_url: str, topic_root: str) -> Iterator[AgentProcess]:
    import docker

    proc = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="docker")
    yield proc
    proc.stop()
    client = docker.from_env(timeout=30)
    for container in client.containers.list(
        all=True, filters={"label": f"io.edgefleet.node={proc.node}"}
    ):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    client.close()


def container_ids(node: str, name: str) -> list[str]:
    import docker

    client = docker.from_env(timeout=30)
    try:
        found = client.containers.list(
            all=True,
            filters={"label": [f"io.edgefleet.node={node}", f"io.edgefleet.workload={name}"]},
        )
        return [str(c.id) for c in found]
    finally:
        client.close()


def web(image: str, **extra: Any) -> Any:
    return workload(
        "web", runtime="docker", image=image, command=["httpd", "-f", "-p", "8080"],
        health={"kind": "exec", "command": ["true"], "interval_s": 0.5}, **extra,
    )  # fmt: skip


async def test_the_agent_runs_updates_adopts_and_removes_containers(
    agent: AgentProcess, broker_url: str, topic_root: str, image: str
) -> None:
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, web(image)))
        agent.start()
        healthy = await watcher.wait_for(
            agent.topic("reported"),
            lambda b: all_running({"web"})(b) and b["workloads"]["web"]["health"] == "healthy",
            timeout=60,
        )
        assert healthy["workloads"]["web"]["spec_hash"] == web(image).spec_hash
        first = container_ids(agent.node, "web")
        assert len(first) == 1

        bigger = web(image, resources={"memory_mb": 128})
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 2, bigger))
        await watcher.wait_for(
            agent.topic("reported"),
            lambda b: (
                b["observed_generation"] == 2
                and b["workloads"]["web"]["spec_hash"] == bigger.spec_hash
            ),
            timeout=30,
        )
        assert container_ids(agent.node, "web") == first  # live update, no new container

        agent.kill9()
        mark = watcher.mark()
        agent.start()
        adopted = await watcher.wait_for(
            agent.topic("reported"),
            lambda b: b["session"] == 2 and all_running({"web"})(b),
            after=mark,
            timeout=30,
        )
        assert adopted["workloads"]["web"]["restarts"] == 0
        assert container_ids(agent.node, "web") == first  # adopted, not duplicated

        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 3))
        await watcher.wait_for(
            agent.topic("reported"),
            lambda b: b["observed_generation"] == 3 and not b["workloads"],
            timeout=30,
        )
        assert container_ids(agent.node, "web") == []
