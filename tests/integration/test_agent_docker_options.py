"""Workload options on a real dockerd, governed by the gateway's own policy: a container
gets a host-path volume and a device when the policy allows them; a document asking for a
device it does not allow, or a privileged container, is refused as a whole with an event
and the running container is left exactly as it was. Needs the broker and docker tiers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.fleet import eventually
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

    data = tmp_path / "data"
    data.mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"allow:\n  host_paths: [{data}]\n  devices: [/dev/zero]\n")
    proc = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="docker",
                        extra=["--policy-file", str(policy)])  # fmt: skip
    yield proc
    proc.stop()
    client = docker.from_env(timeout=30)
    for container in client.containers.list(
        all=True, filters={"label": f"io.edgefleet.node={proc.node}"}
    ):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    client.close()


def inspect(node: str, name: str) -> dict[str, Any]:
    import docker

    client = docker.from_env(timeout=30)
    try:
        (found,) = client.containers.list(
            all=True,
            filters={"label": [f"io.edgefleet.node={node}", f"io.edgefleet.workload={name}"]},
        )
        return dict(found.attrs)
    finally:
        client.close()


async def test_a_host_path_and_a_device_when_allowed_refused_when_not(
    agent: AgentProcess, broker_url: str, topic_root: str, image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    script = "head -c 16 /dev/zero | wc -c > /data/zero-bytes; sleep 3600"
    gateway = workload(
        "gateway", runtime="docker", image=image, command=["sh", "-c", script],
        volumes=[{"source": str(data), "target": "/data"}], devices=[{"host": "/dev/zero"}],
    )  # fmt: skip
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, gateway))
        agent.start()
        await watcher.wait_for(agent.topic("reported"), all_running({"gateway"}), timeout=60)
        attrs = inspect(agent.node, "gateway")
        mounts = {(m["Source"], m["Destination"]) for m in attrs["Mounts"]}
        assert (str(data), "/data") in mounts
        devices = attrs["HostConfig"]["Devices"]
        assert [(d["PathOnHost"], d["PathInContainer"]) for d in devices] == [
            ("/dev/zero", "/dev/zero")
        ]
        # The workload wrote through the volume from the device.
        out = data / "zero-bytes"
        await eventually(lambda: out.exists() and out.read_text().strip() == "16", 30.0,
                         "the workload's output through the volume")  # fmt: skip

        mark = watcher.mark()
        greedy = workload("greedy", runtime="docker", image=image, command=["sleep", "3600"],
                          privileged=True, devices=[{"host": "/dev/null"}])  # fmt: skip
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 2, gateway, greedy))
        event = await watcher.wait_for(
            agent.topic("events"),
            lambda b: b["kind"] == "desired-rejected" and b["details"]["field"] == "policy",
            after=mark,
            timeout=30,
        )
        assert "greedy: allow.privileged" in event["details"]["reason"]
        assert (
            "greedy: allow.devices: device /dev/null is not allowed" in event["details"]["reason"]
        )
        reported = watcher.bodies(agent.topic("reported"))[-1]
        assert reported["observed_generation"] == 1
        assert set(reported["workloads"]) == {"gateway"}
        assert inspect(agent.node, "gateway")["Id"] == attrs["Id"]
