"""The process runtime's decisions (pure) and its small file helpers (registry, log cap)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from edgefleet_agent.runtimes.process import ProcessRuntime
from edgefleet_agent.runtimes.process_control import cap_log, memory_rlimit
from edgefleet_agent.runtimes.process_policy import (
    CPU_NOT_ENFORCED,
    ProcessRecord,
    RestartBackoff,
    after_exit,
    after_failed_start,
    after_start,
    due_for_restart,
    observed_from_record,
)
from edgefleet_agent.runtimes.process_registry import load_registry, save_registry
from edgefleet_protocol import WorkloadSpec

BACKOFF = RestartBackoff()  # the defaults: what every gateway runs (1 s doubling to 60 s)


def record(restart: str = "always", **fields: object) -> ProcessRecord:
    spec = WorkloadSpec(runtime="process", command=["app"], restart=restart)  # type: ignore[arg-type]
    values: dict[str, object] = {
        "name": "app-1",
        "app": "app",
        "spec": spec,
        "spec_hash": "sha256:0",
        "pid": 100,
        "create_time": 5.0,
        "started_at": 1000.0,
    }
    values.update(fields)
    return ProcessRecord.model_validate(values)


@pytest.mark.parametrize(
    ("previous", "ran_for", "delay"),
    [
        (None, 0.5, 1.0),
        (1.0, 0.5, 2.0),
        (2.0, 3.0, 4.0),
        (32.0, 10.0, 60.0),
        (60.0, 10.0, 60.0),
        (60.0, 60.0, 1.0),  # ran stably: the sequence starts over
    ],
)
def test_restart_delays_double_up_to_the_cap_and_reset_after_stable_running(
    previous: float | None, ran_for: float, delay: float
) -> None:
    assert BACKOFF.next_delay(previous, ran_for) == delay


def test_the_process_runtime_restarts_with_the_documented_default_backoff(
    tmp_path: Path,
) -> None:
    # edge-agent docs and process.py promise 1 s, 2 s, 4 s ... 60 s, back to 1 s after 60 s
    # of stable running; the agent builds its process runtime without a backoff argument.
    assert RestartBackoff() == RestartBackoff(base_s=1.0, cap_s=60.0, stable_after_s=60.0)
    runtime = ProcessRuntime(tmp_path, "gw-1", auto_supervise=False)
    assert runtime.backoff == RestartBackoff(base_s=1.0, cap_s=60.0, stable_after_s=60.0)
    delays, previous = [], None
    for _ in range(8):
        previous = runtime.backoff.next_delay(previous, 0.5)
        delays.append(previous)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


@pytest.mark.parametrize(
    ("restart", "exit_code", "phase", "message"),
    [
        ("always", 0, "backoff", "exited with code 0; restarting in 1 s"),
        ("always", 3, "backoff", "exited with code 3; restarting in 1 s"),
        ("on-failure", 3, "backoff", "exited with code 3; restarting in 1 s"),
        ("on-failure", 0, "stopped", "exited with code 0"),
        ("on-failure", None, "backoff", None),
        ("never", 3, "failed", "exited with code 3"),
        ("never", 0, "stopped", "exited with code 0"),
        ("never", 137, "failed", "exited with code 137 (killed by signal 9)"),
    ],
)
def test_an_exit_leads_to_a_restart_or_a_final_state_per_policy(
    restart: str, exit_code: int | None, phase: str, message: str | None
) -> None:
    after = after_exit(record(restart), exit_code=exit_code, now=1000.5, backoff=BACKOFF)
    assert after.phase == phase
    assert (after.pid, after.create_time, after.exit_code) == (None, None, exit_code)
    if message is not None:
        assert after.message == message
    assert (after.next_start_at == 1001.5) is (phase == "backoff")


def test_an_unknown_exit_code_says_why_it_is_unknown() -> None:
    after = after_exit(record(), exit_code=None, now=1000.5, backoff=BACKOFF)
    assert after.message.startswith("exited (exit code unknown: it was not started by this")


def test_a_crash_loop_waits_longer_each_time_and_counts_restarts() -> None:
    current = record()
    delays = []
    now = 1000.0
    for _ in range(8):
        now += 0.5  # dies half a second after each start
        current = after_exit(current, exit_code=1, now=now, backoff=BACKOFF)
        delays.append(current.last_delay_s)
        assert not due_for_restart(current, now)
        now = current.next_start_at or now
        assert due_for_restart(current, now)
        current = after_start(current, pid=200, create_time=now, now=now, restarted=True)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert current.restarts == 8


def test_a_failed_respawn_backs_off_unless_the_cause_is_permanent() -> None:
    waiting = after_exit(record(), exit_code=1, now=1000.5, backoff=BACKOFF)
    transient = after_failed_start(
        waiting, message="could not start app: EAGAIN", permanent=False, now=1002.0, backoff=BACKOFF
    )
    permanent = after_failed_start(
        waiting, message="command not found: app", permanent=True, now=1002.0, backoff=BACKOFF
    )
    assert (transient.phase, transient.next_start_at) == ("backoff", 1004.0)
    assert transient.message == "could not start app: EAGAIN; retrying in 2 s"
    assert (permanent.phase, permanent.message) == ("failed", "command not found: app")


@pytest.mark.parametrize(
    ("phase", "state", "runtime_id", "since"),
    [
        ("running", "running", "100", 1000.0),
        ("backoff", "starting", "", 1010.0),
        ("failed", "failed", "", 1010.0),
        ("stopped", "stopped", "", 1010.0),
    ],
)
def test_phases_are_reported_as_workload_states(
    phase: str, state: str, runtime_id: str, since: float
) -> None:
    seen = observed_from_record(record(phase=phase, exited_at=1010.0, exit_code=2, restarts=3))
    assert (seen.state, seen.runtime_id, seen.since, seen.restarts) == (
        state,
        runtime_id,
        since,
        3,
    )
    assert seen.exit_code == (None if phase == "running" else 2)


def test_a_running_process_says_its_cpu_limit_is_not_enforced() -> None:
    started = after_start(record(), pid=1, create_time=1.0, now=1.0, restarted=False)
    assert observed_from_record(started).message == CPU_NOT_ENFORCED


@pytest.mark.parametrize(
    ("wanted", "hard", "limits"),
    [
        (64, resource.RLIM_INFINITY, (64, resource.RLIM_INFINITY)),
        (64, 128, (64, 128)),
        (256, 128, (128, 128)),
    ],
)
def test_the_memory_limit_is_the_soft_rlimit_under_an_untouched_hard_one(
    wanted: int, hard: int, limits: tuple[int, int]
) -> None:
    assert memory_rlimit(wanted, hard) == limits


def test_the_registry_round_trips_and_belongs_to_one_node(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    records = {"app-1": record(restarts=2)}
    save_registry(path, "node-a", records)
    assert load_registry(path, "node-a") == records
    assert load_registry(path, "node-b") == {}
    assert load_registry(tmp_path / "absent.json", "node-a") == {}


def test_an_unreadable_registry_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    path.write_text('{"v": 1, "node": "node-a", "processes": {"x": {"name": 3}}}')
    assert load_registry(path, "node-a") == {}
    aside = list(tmp_path.glob("processes.json.corrupt-*"))
    assert [p.read_text() for p in aside] == [
        '{"v": 1, "node": "node-a", "processes": {"x": {"name": 3}}}'
    ]
    assert not path.exists()


def test_a_log_past_its_cap_keeps_whole_lines_from_its_newest_half(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(b"".join(f"line {i:04d}\n".encode() for i in range(1000)))  # 10 000 B
    assert cap_log(log, 2000)
    lines = log.read_bytes().splitlines()
    assert lines[0] == b"[edgefleet: log cut at 10000 bytes; newest part kept]"
    assert lines[1:] == [f"line {i:04d}".encode() for i in range(900, 1000)]
    assert len(log.read_bytes()) <= 2000
    assert not cap_log(log, 2000)
