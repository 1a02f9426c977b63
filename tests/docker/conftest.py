"""Fixtures for the docker tier: the local busybox image, a raw client, a runtime per test.

Each test gets its own node id, so the containers it creates carry their own
``io.edgefleet.node`` label: tests never see each other's containers, and teardown removes
exactly this test's containers (plus any unlabelled ones a test registers).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from edgefleet_agent.runtimes.docker import DockerRuntime
from harness.images import ImageUnavailable, ensure_test_image


@pytest.fixture(scope="session")
def test_image(docker_ready: None) -> str:
    try:
        return ensure_test_image()
    except ImageUnavailable as exc:
        pytest.fail(f"cannot build the docker test image: {exc}", pytrace=False)


@pytest.fixture
def docker_client(docker_ready: None) -> Iterator[Any]:
    client = docker.from_env(timeout=60)
    yield client
    client.close()


@pytest.fixture
def node_id() -> str:
    return f"n{uuid.uuid4().hex[:10]}"


@pytest.fixture
def foreign_containers(docker_client: Any) -> Iterator[list[Any]]:
    """Containers a test makes *without* our labels; removed by the test harness only."""
    made: list[Any] = []
    yield made
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture
async def runtime(
    docker_client: Any, node_id: str, test_image: str
) -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime(node_id, "site-test", pull_timeout_s=20.0)
    yield rt
    await rt.close()
    leftovers = docker_client.containers.list(
        all=True, filters={"label": f"io.edgefleet.node={node_id}"}
    )
    for container in leftovers:
        container.remove(force=True)
