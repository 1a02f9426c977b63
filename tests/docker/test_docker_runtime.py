"""The Docker runtime against the real dockerd, with a locally built busybox image.

Every test names its workloads uniquely and runs under its own node id (see conftest), so
teardown removes exactly what the test created.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psutil
import pytest
from edgefleet_agent.core.runtime import (
    Observed,
    PermanentRuntimeError,
    TransientRuntimeError,
    WorkloadRef,
)
from edgefleet_agent.runtimes.docker import DockerRuntime
from edgefleet_protocol import Port, Resources, WorkloadSpec, spec_hash
from harness.mosquitto import free_port

T = TypeVar("T")

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ref_for(name: str, **spec: Any) -> WorkloadRef:
    fields: dict[str, Any] = {"runtime": "docker", "image": "edgefleet-test/busybox:latest"}
    fields.update(spec)
    workload = WorkloadSpec(**fields)
    return WorkloadRef(name=name, app="demo", spec=workload, spec_hash=spec_hash(workload))


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 20.0, what: str
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


async def observed(rt: DockerRuntime, name: str) -> Observed | None:
    return next((o for o in await rt.list_owned() if o.name == name), None)


async def running(rt: DockerRuntime, name: str) -> Observed:
    async def probe() -> Observed | None:
        found = await observed(rt, name)
        return found if found is not None and found.state == "running" else None

    return await eventually(probe, what=f"{name} to run")


def http_get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as response:
        return str(response.read().decode())


async def test_a_started_workload_runs_labelled_and_serves_http_on_its_published_port(
    runtime: DockerRuntime, docker_client: Any, node_id: str
) -> None:
    name = unique("web")
    port = free_port()
    ref = ref_for(name, command=HTTPD, ports=[Port(container=8080, host=port, host_ip="127.0.0.1")])
    await runtime.prepare(ref)
    started = await runtime.start(ref)
    seen = await running(runtime, name)

    async def page() -> str | None:
        try:
            return await asyncio.to_thread(http_get, port)
        except OSError:
            return None

    assert "edgefleet test page" in await eventually(page, what="httpd to answer")
    assert seen.runtime_id == started.runtime_id
    assert (seen.app, seen.spec_hash) == ("demo", ref.spec_hash)
    labels = docker_client.containers.get(f"edgefleet-{name}").labels
    assert labels["io.edgefleet.managed"] == "true"
    assert labels["io.edgefleet.node"] == node_id
    assert labels["io.edgefleet.site"] == "site-test"
    assert labels["io.edgefleet.workload"] == name
    assert labels["io.edgefleet.spec-hash"] == ref.spec_hash


async def test_limits_are_set_on_create_and_changed_live_in_the_same_container(
    runtime: DockerRuntime, docker_client: Any
) -> None:
    name = unique("limits")
    ref = ref_for(name, command=["sleep", "600"], resources=Resources(cpu=0.5, memory_mb=64))
    started = await runtime.start(ref)
    host = docker_client.containers.get(started.runtime_id).attrs["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemorySwap"]) == (
        500_000_000,
        64 * 2**20,
        64 * 2**20,
    )

    update = await runtime.update_resources(name, Resources(cpu=0.25, memory_mb=96))

    assert update.applied, update.message
    host = docker_client.containers.get(started.runtime_id).attrs["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemorySwap"]) == (
        250_000_000,
        96 * 2**20,
        96 * 2**20,
    )
    after = await running(runtime, name)
    assert after.runtime_id == started.runtime_id
    new_spec = ref.spec.model_copy(update={"resources": Resources(cpu=0.25, memory_mb=96)})
    assert after.spec_hash == spec_hash(new_spec)


async def test_containers_without_our_labels_are_never_listed_removed_or_replaced(
    runtime: DockerRuntime, docker_client: Any, node_id: str, foreign_containers: list[Any]
) -> None:
    name = unique("foreign")
    image = "edgefleet-test/busybox:latest"
    unlabelled = docker_client.containers.run(
        image, ["sleep", "600"], name=f"edgefleet-{name}", detach=True
    )
    other_node = docker_client.containers.run(
        image,
        ["sleep", "600"],
        name=f"edgefleet-{unique('other')}",
        detach=True,
        labels={
            "io.edgefleet.managed": "true",
            "io.edgefleet.node": f"not-{node_id}",
            "io.edgefleet.workload": name,
        },
    )
    foreign_containers.extend([unlabelled, other_node])

    assert await runtime.list_owned() == []
    await runtime.remove(name, timeout_s=1)
    with pytest.raises(PermanentRuntimeError, match="not managed by edgefleet"):
        await runtime.start(ref_for(name, command=["sleep", "600"]))

    for container in (unlabelled, other_node):
        container.reload()
        assert container.status == "running"


async def test_a_restarted_agent_adopts_the_containers_it_left_running(
    runtime: DockerRuntime, node_id: str
) -> None:
    name = unique("adopt")
    started = await runtime.start(ref_for(name, command=["sleep", "600"]))
    await runtime.close()

    again = DockerRuntime(node_id, "site-test")
    try:
        seen = await running(again, name)
    finally:
        await again.close()
    assert (seen.runtime_id, seen.spec_hash) == (started.runtime_id, started.spec_hash)


async def test_remove_stops_and_deletes_and_is_idempotent(
    runtime: DockerRuntime, docker_client: Any
) -> None:
    name = unique("gone")
    started = await runtime.start(ref_for(name, command=["sleep", "600"], stop_timeout_s=1))

    await runtime.remove(name, timeout_s=1)
    await runtime.remove(name, timeout_s=1)
    await runtime.remove(unique("never-existed"), timeout_s=1)

    assert await observed(runtime, name) is None
    assert docker_client.containers.list(all=True, filters={"id": started.runtime_id}) == []


async def test_a_missing_image_with_an_unreachable_registry_fails_prepare_clearly_and_fast(
    runtime: DockerRuntime,
) -> None:
    image = f"127.0.0.1:{free_port()}/edgefleet-test/missing:1"
    began = time.monotonic()
    with pytest.raises(TransientRuntimeError) as caught:
        await runtime.prepare(ref_for(unique("nopull"), image=image))
    assert time.monotonic() - began < runtime.pull_timeout_s
    assert f"image {image} is not present and its registry is unreachable" in caught.value.message


async def test_a_pull_from_a_registry_that_never_answers_times_out_with_a_clear_message(
    node_id: str, test_image: str
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    image = f"127.0.0.1:{silent.getsockname()[1]}/edgefleet-test/slow:1"
    rt = DockerRuntime(node_id, "site-test", pull_timeout_s=1.0)
    try:
        began = time.monotonic()
        with pytest.raises(TransientRuntimeError, match=r"pulling it timed out after 1 s"):
            await rt.prepare(ref_for(unique("slow"), image=image))
        assert time.monotonic() - began < 5
    finally:
        silent.close()  # dockerd's pull then fails at once, ending the worker thread
        await rt.close()


async def test_a_command_missing_from_the_image_fails_start_permanently_and_leaves_nothing(
    runtime: DockerRuntime,
) -> None:
    name = unique("nocmd")
    with pytest.raises(PermanentRuntimeError, match="executable file not found"):
        await runtime.start(ref_for(name, command=["no-such-binary"]))
    assert await observed(runtime, name) is None


async def test_a_crashing_container_reports_its_exit_code_and_docker_restarts_it(
    runtime: DockerRuntime,
) -> None:
    name = unique("crash")
    await runtime.start(ref_for(name, command=["sh", "-c", "sleep 0.2; exit 3"]))

    async def crash_looping() -> Observed | None:
        found = await observed(runtime, name)
        return found if found is not None and found.restarts >= 2 else None

    seen = await eventually(crash_looping, what="docker to restart the crashing container")
    # Caught between runs it is "starting" (docker's backoff), or "failed" in the instant
    # before docker restarts it, or "running" again; the exit code survives in all of them.
    assert seen.state in ("starting", "failed", "running")

    async def crashed() -> Observed | None:
        found = await observed(runtime, name)
        return found if found is not None and found.exit_code == 3 else None

    after_crash = await eventually(crashed, what="the exit code to be reported")
    assert "exited with code 3" in after_crash.message
    assert after_crash.state in ("starting", "failed")


async def test_a_container_that_exits_cleanly_under_restart_never_is_stopped_not_failed(
    runtime: DockerRuntime,
) -> None:
    name = unique("once")
    await runtime.start(ref_for(name, command=["true"], restart="never"))

    async def ended() -> Observed | None:
        found = await observed(runtime, name)
        return found if found is not None and found.state == "stopped" else None

    seen = await eventually(ended, what="the container to stop")
    assert (seen.exit_code, seen.restarts, seen.message) == (0, 0, "exited with code 0")


async def test_exec_runs_inside_the_container_and_a_hung_command_times_out(
    runtime: DockerRuntime,
) -> None:
    name = unique("exec")
    await runtime.start(ref_for(name, command=["sleep", "600"], env={"GREETING": "hello"}))
    await running(runtime, name)

    said = await runtime.exec(name, ["sh", "-c", "echo $GREETING; exit 7"], timeout_s=10)
    began = time.monotonic()
    hung = await runtime.exec(name, ["sleep", "59"], timeout_s=0.5)
    took = time.monotonic() - began

    def hung_sleeps() -> list[int]:
        found = psutil.process_iter(["cmdline"])
        return [p.pid for p in found if p.info["cmdline"] == ["sleep", "59"]]

    assert (said.exit_code, said.output.strip()) == (7, "hello")
    assert hung.exit_code == 124
    assert "timed out after 0.5 s" in hung.output
    assert took < 5

    # Killed, not left running in the container (the kill lands a moment after the reply).
    async def none_left() -> bool:
        return hung_sleeps() == []

    await eventually(none_left, timeout_s=10, what="the hung exec to be killed")


async def test_restart_restarts_the_same_container_in_place(runtime: DockerRuntime) -> None:
    name = unique("restart")
    await runtime.start(ref_for(name, command=["sleep", "600"], stop_timeout_s=1))
    before = await running(runtime, name)

    await runtime.restart(name)

    after = await running(runtime, name)
    assert after.runtime_id == before.runtime_id
    assert after.since > before.since


async def test_usage_reports_cpu_and_memory_of_running_workloads(
    runtime: DockerRuntime,
) -> None:
    name = unique("usage")
    await runtime.start(ref_for(name, command=HTTPD, resources=Resources(memory_mb=32)))
    await running(runtime, name)

    usage = (await runtime.usage())[name]

    assert usage.cpu_pct is not None
    assert usage.memory_mb is not None
    assert 0 < usage.memory_mb < 32
    assert usage.memory_pct is not None
    assert usage.memory_pct == pytest.approx(usage.memory_mb / 32 * 100)


async def test_available_is_true_with_a_daemon_and_false_without_one(
    runtime: DockerRuntime, node_id: str
) -> None:
    import docker

    # A closed loopback port rather than a missing unix socket: docker-py leaks the socket
    # object when a unix connect fails, which this suite's warnings-as-errors would flag.
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    gone = DockerRuntime(
        node_id,
        "site-test",
        client_factory=lambda: docker.DockerClient(base_url=nowhere, version="1.41", timeout=2),
    )
    try:
        assert await runtime.available() is True
        assert await gone.available() is False
        with pytest.raises(TransientRuntimeError, match="docker daemon unavailable"):
            await gone.list_owned()
    finally:
        await gone.close()


async def test_starting_over_a_leftover_container_of_ours_replaces_it(
    runtime: DockerRuntime, docker_client: Any
) -> None:
    name = unique("again")
    ref = ref_for(name, command=["sleep", "600"])
    first = await runtime.start(ref)

    second = await runtime.start(ref)

    assert second.runtime_id != first.runtime_id
    assert docker_client.containers.list(all=True, filters={"id": first.runtime_id}) == []
    assert [o.runtime_id for o in await runtime.list_owned()] == [second.runtime_id]
