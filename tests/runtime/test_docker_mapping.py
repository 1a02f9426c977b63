"""Pure Docker <-> edgefleet translations: state mapping, create arguments, stats, errors."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_agent.core.runtime import PermanentRuntimeError, TransientRuntimeError, WorkloadRef
from edgefleet_agent.runtimes.docker_mapping import (
    classify_pull_error,
    classify_start_error,
    create_kwargs,
    effective_spec_hash,
    labels_for,
    observed_from_inspect,
    parse_docker_time,
    state_from_inspect,
    usage_from_stats,
)
from edgefleet_protocol import HealthCheck, Port, Resources, WorkloadSpec, spec_hash


def ref_for(**spec: Any) -> WorkloadRef:
    fields: dict[str, Any] = {"runtime": "docker", "image": "img:1"}
    fields.update(spec)
    workload = WorkloadSpec(**fields)
    return WorkloadRef(name="web-1", app="web", spec=workload, spec_hash=spec_hash(workload))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Status": "created"}, ("starting", None)),
        ({"Status": "running"}, ("running", None)),
        ({"Status": "running", "Health": {"Status": "unhealthy"}}, ("unhealthy", None)),
        ({"Status": "running", "Health": {"Status": "starting"}}, ("running", None)),
        ({"Status": "restarting", "ExitCode": 3}, ("starting", 3)),
        ({"Status": "exited", "ExitCode": 0}, ("stopped", 0)),
        ({"Status": "exited", "ExitCode": 2}, ("failed", 2)),
        ({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, ("failed", 137)),
        ({"Status": "dead", "ExitCode": 0}, ("failed", 0)),
    ],
)
def test_docker_states_map_to_workload_states_with_exit_codes(
    state: dict[str, Any], expected: tuple[str, int | None]
) -> None:
    mapped, _message, exit_code = state_from_inspect(state)
    assert (mapped, exit_code) == expected


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"Status": "exited", "ExitCode": 2}, "exited with code 2"),
        ({"Status": "restarting", "ExitCode": 1}, "exited with code 1; docker is restarting it"),
        (
            {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
            "exited with code 137 (killed by signal 9) (out of memory)",
        ),
        ({"Status": "dead", "Error": "driver failed"}, "container is dead: driver failed"),
    ],
)
def test_state_messages_say_why_a_workload_is_not_running(
    state: dict[str, Any], message: str
) -> None:
    assert state_from_inspect(state)[1] == message


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2024-05-01T12:00:00Z", 1714564800.0),
        ("2024-05-01T12:00:00.123456789Z", 1714564800.123456789),
        ("2024-05-01T14:00:00.5+02:00", 1714564800.5),
        ("0001-01-01T00:00:00Z", 0.0),
        ("", 0.0),
        (None, 0.0),
        ("yesterday", 0.0),
    ],
)
def test_docker_timestamps_parse_to_epoch_seconds(stamp: str | None, epoch: float) -> None:
    assert parse_docker_time(stamp) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    ("restart", "policy"),
    [
        ("always", {"Name": "unless-stopped"}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("never", {"Name": "no"}),
    ],
)
def test_docker_owns_restarts_through_its_restart_policy(
    restart: str, policy: dict[str, Any]
) -> None:
    assert create_kwargs(ref_for(restart=restart), node="n1", site="s1")["restart_policy"] == policy


def test_create_arguments_carry_limits_ports_env_and_ownership_labels() -> None:
    ref = ref_for(
        command=["httpd", "-f"],
        env={"A": "1"},
        cwd="/www",
        resources=Resources(cpu=0.5, memory_mb=64),
        ports=[
            Port(container=8080, host=18080, host_ip="127.0.0.1"),
            Port(container=8080, host=18081, host_ip="127.0.0.1"),
            Port(container=53, protocol="udp"),
        ],
    )
    kwargs = create_kwargs(ref, node="n1", site="s1")
    assert kwargs["name"] == "edgefleet-web-1"
    assert kwargs["command"] == ["httpd", "-f"]
    assert (kwargs["environment"], kwargs["working_dir"]) == ({"A": "1"}, "/www")
    assert (kwargs["nano_cpus"], kwargs["mem_limit"], kwargs["memswap_limit"]) == (
        500_000_000,
        64 * 2**20,
        64 * 2**20,
    )
    assert kwargs["ports"] == {
        "8080/tcp": [("127.0.0.1", 18080), ("127.0.0.1", 18081)],
        "53/udp": [("0.0.0.0", None)],
    }
    assert kwargs["labels"] == labels_for(ref, node="n1", site="s1")
    assert kwargs["labels"]["io.edgefleet.managed"] == "true"
    assert "healthcheck" not in kwargs


@pytest.mark.parametrize(
    ("health", "disabled"),
    [
        (HealthCheck(kind="http", port=8080), True),
        (HealthCheck(kind="exec", command=["true"]), True),
        (HealthCheck(kind="docker"), False),
        (None, False),
    ],
)
def test_the_image_healthcheck_is_off_when_the_agent_probes_itself(
    health: HealthCheck | None, disabled: bool
) -> None:
    kwargs = create_kwargs(ref_for(health=health), node="n1", site="s1")
    assert ("healthcheck" in kwargs) is disabled


def test_after_a_live_update_the_observed_hash_is_the_hash_of_the_new_limits() -> None:
    ref = ref_for(resources=Resources(cpu=0.35, memory_mb=64))
    labels = labels_for(ref, node="n1", site="s1")
    unchanged = {"NanoCpus": 350_000_000, "Memory": 64 * 2**20}
    updated = {"NanoCpus": 700_000_000, "Memory": 128 * 2**20}
    new_spec = ref.spec.model_copy(update={"resources": Resources(cpu=0.7, memory_mb=128)})

    assert effective_spec_hash(labels, unchanged) == ref.spec_hash
    assert effective_spec_hash(labels, updated) == spec_hash(new_spec)
    assert effective_spec_hash({"io.edgefleet.spec-hash": "sha256:x"}, updated) == "sha256:x"


def test_inspect_data_becomes_an_observed_workload() -> None:
    ref = ref_for()
    attrs = {
        "Id": "abc123",
        "Name": "/edgefleet-web-1",
        "Created": "2024-05-01T11:00:00Z",
        "RestartCount": 4,
        "Config": {"Labels": labels_for(ref, node="n1", site="s1")},
        "HostConfig": {"NanoCpus": 100_000_000, "Memory": 64 * 2**20},
        "State": {
            "Status": "exited",
            "ExitCode": 1,
            "StartedAt": "2024-05-01T12:00:00Z",
            "FinishedAt": "2024-05-01T12:00:05Z",
        },
    }
    seen = observed_from_inspect(attrs)
    assert (seen.name, seen.app, seen.spec_hash, seen.runtime_id) == (
        "web-1",
        "web",
        ref.spec_hash,
        "abc123",
    )
    assert (seen.state, seen.exit_code, seen.restarts, seen.since) == (
        "failed",
        1,
        4,
        1714564805.0,
    )
    assert seen.health == "unknown"


def test_stats_become_cpu_percent_of_one_core_and_memory_without_page_cache() -> None:
    stats = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 2_000_000_000},
            "system_cpu_usage": 10_000_000_000,
        },
        "memory_stats": {
            "usage": 40 * 2**20,
            "limit": 64 * 2**20,
            "stats": {"total_inactive_file": 8 * 2**20},
        },
    }
    usage = usage_from_stats(stats)
    assert usage.cpu_pct == pytest.approx(20.0)
    assert usage.memory_mb == pytest.approx(32.0)
    assert usage.memory_pct == pytest.approx(50.0)


def test_a_first_stats_sample_has_no_cpu_figure_rather_than_a_wrong_one() -> None:
    usage = usage_from_stats({"cpu_stats": {"system_cpu_usage": 5}, "precpu_stats": {}})
    assert (usage.cpu_pct, usage.memory_mb) == (None, None)


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        (404, "manifest for img:9 not found: manifest unknown", PermanentRuntimeError),
        (500, "pull access denied for img, repository does not exist", PermanentRuntimeError),
        (400, "invalid reference format", PermanentRuntimeError),
        (500, 'Get "http://127.0.0.1:1/v2/": connection refused', TransientRuntimeError),
        (500, "lookup registry-1.docker.io: no such host", TransientRuntimeError),
        (500, "write /var/lib/docker: no space left on device", TransientRuntimeError),
        (None, "unexpected EOF", TransientRuntimeError),
    ],
)
def test_pull_failures_are_named_transient_or_permanent(
    status: int | None, detail: str, kind: type[Exception]
) -> None:
    error = classify_pull_error("img:9", status, detail)
    assert type(error) is kind
    assert "img:9" in error.message
    assert detail in error.message


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        (400, 'exec: "nope": executable file not found in $PATH', PermanentRuntimeError),
        (500, "stat /bin/x: no such file or directory: unknown", PermanentRuntimeError),
        (500, "Bind for 127.0.0.1:8080 failed: port is already allocated", TransientRuntimeError),
        (409, "Conflict. The container name is already in use", TransientRuntimeError),
    ],
)
def test_start_failures_are_named_transient_or_permanent(
    status: int, detail: str, kind: type[Exception]
) -> None:
    assert type(classify_start_error("web-1", status, detail)) is kind
