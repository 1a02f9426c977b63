"""Workload options on the runtimes: what Docker is asked for (pure mapping), and a
process that runs as another user for real (the agent in CI runs as root; an unknown user
is a permanent failure that says so)."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from edgefleet_agent.core.runtime import PermanentRuntimeError, WorkloadRef
from edgefleet_agent.runtimes.docker_mapping import create_kwargs
from edgefleet_agent.runtimes.process import ProcessRuntime
from edgefleet_agent.runtimes.process_policy import RestartBackoff
from edgefleet_protocol import WorkloadSpec, spec_hash


def ref(**spec: Any) -> WorkloadRef:
    workload = WorkloadSpec.model_validate(spec)
    return WorkloadRef(name=f"w-{uuid.uuid4().hex[:6]}", app="a", spec=workload,
                       spec_hash=spec_hash(workload))  # fmt: skip


def test_docker_is_asked_for_volumes_devices_network_capabilities_and_user() -> None:
    kwargs = create_kwargs(
        ref(runtime="docker", image="busybox", ports=[{"container": 80, "host": 8080}],
            volumes=[{"source": "/srv/data", "target": "/data", "read_only": True},
                     {"source": "cache", "target": "/cache"}],
            devices=[{"host": "/dev/ttyUSB0", "container": "/dev/modbus", "permissions": "rw"}],
            host_network=True, cap_add=["CAP_NET_ADMIN"], privileged=True, user="1000:20"),
        node="n1", site="s1",
    )  # fmt: skip
    assert kwargs["volumes"] == {
        "/srv/data": {"bind": "/data", "mode": "ro"},
        "cache": {"bind": "/cache", "mode": "rw"},
    }
    assert kwargs["devices"] == ["/dev/ttyUSB0:/dev/modbus:rw"]
    assert kwargs["network_mode"] == "host"
    assert "ports" not in kwargs  # host network publishes nothing
    assert (kwargs["cap_add"], kwargs["privileged"], kwargs["user"]) == (
        ["NET_ADMIN"],
        True,
        "1000:20",
    )


def test_a_spec_without_options_asks_docker_for_none_and_keeps_its_hash() -> None:
    plain = {"runtime": "docker", "image": "busybox"}
    kwargs = create_kwargs(ref(**plain), node="n1", site="s1")
    for key in ("volumes", "devices", "network_mode", "cap_add", "privileged", "user"):
        assert key not in kwargs
    assert spec_hash(WorkloadSpec.model_validate(plain)) == spec_hash(
        WorkloadSpec.model_validate({**plain, "volumes": [], "privileged": False})
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"runtime": "process", "command": ["x"], "privileged": True}, "only for runtime docker"),
        ({"runtime": "docker", "image": "b", "volumes": [{"source": "a/b", "target": "/x"}]},
         "neither an absolute host path nor a volume name"),
        ({"runtime": "docker", "image": "b", "devices": [{"host": "/dev/../etc/shadow"}]},
         "must not contain '..'"),
        ({"runtime": "docker", "image": "b", "cap_add": ["all"]}, "not a Linux capability"),
        ({"runtime": "docker", "image": "b", "user": "root;rm"}, "must be USER or USER:GROUP"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_with_the_reason(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        WorkloadSpec.model_validate(spec)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    rt = ProcessRuntime(tmp_path / "state", "node-1", auto_supervise=False,
                        backoff=RestartBackoff(base_s=0.1, cap_s=0.4))  # fmt: skip
    yield rt
    for workload in await rt.list_owned():
        await rt.remove(workload.name, timeout_s=1)
    await rt.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_a_process_runs_as_the_user_it_names(runtime: ProcessRuntime) -> None:
    nobody = pwd.getpwnam("nobody")
    workload = ref(runtime="process", command=["sleep", "600"], user="nobody")
    await runtime.prepare(workload)
    pid = int((await runtime.start(workload)).runtime_id)
    deadline = time.monotonic() + 10
    while psutil.Process(pid).uids().effective != nobody.pw_uid:
        assert time.monotonic() < deadline, "the process never switched user"
        await asyncio.sleep(0.02)
    assert psutil.Process(pid).uids().real == nobody.pw_uid


async def test_an_unknown_user_fails_permanently_naming_it(runtime: ProcessRuntime) -> None:
    workload = ref(runtime="process", command=["sleep", "600"], user="no-such-user-x")
    await runtime.prepare(workload)
    with pytest.raises(PermanentRuntimeError, match="cannot run as no-such-user-x"):
        await runtime.start(workload)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_a_root_agents_workloads_run_as_the_workload_user_and_cannot_read_its_state(
    tmp_path: Path,
) -> None:
    """#12 defect 9: process workloads ran as the agent (root on most gateways) and could
    read its key, environment and store. With a workload user they run unprivileged."""
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    rt = ProcessRuntime(state, "node-1", auto_supervise=False, default_user="nobody")
    secret = state / "agent-store.json"  # stands for the store, the key, the registry
    secret.write_text("the agent's secrets")
    secret.chmod(0o600)
    try:
        workload = ref(
            runtime="process",
            command=["sh", "-c", f"id -u; cat {secret} || echo refused; sleep 600"],
        )
        await rt.prepare(workload)
        pid = int((await rt.start(workload)).runtime_id)
        assert psutil.Process(pid).uids().real == nobody.pw_uid
        log = rt.log_path(workload.name)
        deadline = time.monotonic() + 10
        while "refused" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        lines = log.read_text().splitlines()
        assert lines[0] == str(nobody.pw_uid)
        assert "the agent's secrets" not in log.read_text()
        # A workload that names its user still gets it (here: root, explicitly).
        named = ref(runtime="process", command=["sleep", "600"], user="root")
        await rt.prepare(named)
        named_pid = int((await rt.start(named)).runtime_id)
        assert psutil.Process(named_pid).uids().real == 0
    finally:
        for owned in await rt.list_owned():
            await rt.remove(owned.name, timeout_s=1)
        await rt.close()


def test_a_workload_user_reaches_only_its_metrics_dir_of_the_agents_state(tmp_path: Path) -> None:
    from edgefleet_agent.service.runtime_factory import open_state_to_workloads

    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    open_state_to_workloads(state)
    assert state.stat().st_mode & 0o7777 == 0o711  # traverse, never list
    assert (state / "logs").stat().st_mode & 0o7777 == 0o700
    assert (state / "metrics").stat().st_mode & 0o7777 == 0o1733  # write own file, sticky
