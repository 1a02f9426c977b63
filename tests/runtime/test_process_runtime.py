"""The process runtime with real processes: start, crash/restart, adoption, kill, limits.

No broker, no docker. Supervision is driven by the tests (``auto_supervise=False`` and
explicit ``supervise()``), except in the one test of the background supervisor, and the
backoff base is 0.1 s so restart sequences take well under a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from edgefleet_agent.core.runtime import Observed, PermanentRuntimeError, WorkloadRef
from edgefleet_agent.runtimes.process import ProcessRuntime
from edgefleet_agent.runtimes.process_policy import (
    CPU_NOT_ENFORCED,
    ProcessRecord,
    RestartBackoff,
)
from edgefleet_agent.runtimes.process_registry import save_registry
from edgefleet_protocol import Resources, WorkloadSpec, spec_hash

T = TypeVar("T")
MIB = 2**20
FAST = RestartBackoff(base_s=0.1, cap_s=0.4, stable_after_s=30.0)
NODE = "node-1"

MakeRuntime = Callable[..., ProcessRuntime]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ref_for(name: str, command: list[str], **spec: Any) -> WorkloadRef:
    workload = WorkloadSpec(runtime="process", command=command, **spec)
    return WorkloadRef(name=name, app="demo", spec=workload, spec_hash=spec_hash(workload))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def make_runtime(state_dir: Path) -> AsyncIterator[MakeRuntime]:
    """Runtimes on one state dir; afterwards every recorded workload is killed."""
    made: list[ProcessRuntime] = []

    def make(**kwargs: Any) -> ProcessRuntime:
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("auto_supervise", False)
        runtime = ProcessRuntime(state_dir, NODE, **kwargs)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.close()
    sweeper = ProcessRuntime(state_dir, NODE, auto_supervise=False)
    for workload in await sweeper.list_owned():
        await sweeper.remove(workload.name, timeout_s=1)
    await sweeper.close()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 10.0, what: str
) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


async def observed(rt: ProcessRuntime, name: str) -> Observed:
    return next(o for o in await rt.list_owned() if o.name == name)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def agent_hard_limit() -> str:
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    return "unlimited" if hard == resource.RLIM_INFINITY else str(hard)


def write_registry(state_dir: Path, records: dict[str, ProcessRecord]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    save_registry(state_dir / "processes.json", NODE, records)


def limit_line(pid: int, name: str) -> list[str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            return line[len(name) :].split()
    raise AssertionError(f"no {name} in /proc/{pid}/limits")


async def test_a_process_runs_in_its_own_session_with_env_cwd_limits_and_a_log(
    make_runtime: MakeRuntime, tmp_path: Path
) -> None:
    rt = make_runtime()
    workdir = tmp_path / "work"
    workdir.mkdir()
    name = unique("hello")
    script = 'echo "$GREETING from $(pwd) as $EDGEFLEET_WORKLOAD"; exec sleep 600'
    ref = ref_for(
        name,
        ["sh", "-c", script],
        env={"GREETING": "hello"},
        cwd=str(workdir),
        resources=Resources(memory_mb=64),
    )
    await rt.prepare(ref)
    started = await rt.start(ref)
    pid = int(started.runtime_id)

    async def logged() -> str | None:
        text = rt.log_path(name).read_text()
        return text if text.endswith("\n") else None

    assert await eventually(logged, what="the log line") == f"hello from {workdir} as {name}\n"
    seen = await observed(rt, name)
    assert (seen.state, seen.runtime_id, seen.spec_hash) == ("running", str(pid), ref.spec_hash)
    assert CPU_NOT_ENFORCED in seen.message
    assert os.getsid(pid) == pid
    assert limit_line(pid, "Max address space")[0] == str(64 * MIB)


async def test_a_crashing_process_is_restarted_with_a_doubling_capped_backoff(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("crash")
    await rt.start(ref_for(name, ["sh", "-c", "exit 3"], restart="always"))
    waiting: dict[int, Observed] = {}  # restarts so far -> what was reported while waiting

    async def restarted_five_times() -> Observed | None:
        seen = await observed(rt, name)
        if seen.state == "starting":
            waiting.setdefault(seen.restarts, seen)
        return seen if seen.restarts >= 5 else None

    await eventually(restarted_five_times, what="five restarts")
    messages = [waiting[n].message for n in range(5)]
    assert messages == [
        f"exited with code 3; restarting in {delay} s" for delay in (0.1, 0.2, 0.4, 0.4, 0.4)
    ]
    assert {waiting[n].exit_code for n in range(5)} == {3}


async def test_restart_never_leaves_a_crashed_process_failed_for_good(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("never")
    await rt.start(ref_for(name, ["sh", "-c", "exit 5"], restart="never"))

    async def failed() -> Observed | None:
        seen = await observed(rt, name)
        return seen if seen.state == "failed" else None

    first = await eventually(failed, what="the failure to be seen")
    await asyncio.sleep(FAST.base_s * 3)  # longer than a restart would have waited
    later = await observed(rt, name)
    assert (first.exit_code, first.message, first.runtime_id) == (5, "exited with code 5", "")
    assert (later.state, later.restarts) == ("failed", 0)


async def test_a_clean_exit_under_on_failure_is_stopped_not_restarted(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("done")
    await rt.start(ref_for(name, ["true"], restart="on-failure"))

    async def stopped() -> Observed | None:
        seen = await observed(rt, name)
        return seen if seen.state == "stopped" else None

    seen = await eventually(stopped, what="the clean exit")
    assert (seen.exit_code, seen.restarts) == (0, 0)


async def test_logs_are_cut_to_their_newest_half_past_the_cap(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(log_max_bytes=4096)
    name = unique("chatty")
    script = "i=0; while [ $i -lt 600 ]; do echo line-$i-padding; i=$((i+1)); done; exec sleep 600"
    await rt.start(ref_for(name, ["sh", "-c", script]))

    async def written() -> bool:
        return "line-599-" in rt.log_path(name).read_text()

    await eventually(written, what="all lines to be written")
    await rt.supervise()
    text = rt.log_path(name).read_text()
    assert len(text.encode()) <= 4096
    assert text.startswith("[edgefleet: log cut at ")
    assert text.endswith("line-599-padding\n")
    assert "line-0-" not in text
    assert all(line.endswith("-padding") for line in text.splitlines()[1:])


async def test_a_new_runtime_adopts_the_running_process_instead_of_starting_another(
    make_runtime: MakeRuntime,
) -> None:
    first = make_runtime()
    name = unique("adopt")
    marker = f"600.{uuid.uuid4().int % 10**6}"  # a sleep argument no other process has
    started = await first.start(ref_for(name, ["sleep", marker]))
    await first.close()
    assert not gone(int(started.runtime_id))  # a stopped agent leaves its workloads running

    second = make_runtime()
    seen = await observed(second, name)
    await second.supervise()
    copies = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]

    assert (seen.state, seen.runtime_id) == ("running", started.runtime_id)
    assert [p.pid for p in copies] == [int(started.runtime_id)]
    await second.remove(name, timeout_s=1)
    assert gone(int(started.runtime_id))


async def test_a_registry_entry_whose_pid_now_belongs_to_another_process_is_not_adopted(
    make_runtime: MakeRuntime, state_dir: Path
) -> None:
    stranger = await asyncio.create_subprocess_exec("sleep", "600")
    try:
        name = unique("stale")
        ref = ref_for(name, ["sleep", "600"])
        recycled = ProcessRecord(
            name=name,
            app="demo",
            spec=ref.spec,
            spec_hash=ref.spec_hash,
            pid=stranger.pid,
            create_time=psutil.Process(stranger.pid).create_time() - 3600.0,
            started_at=time.time() - 3600.0,
        )
        write_registry(state_dir, {name: recycled})

        rt = make_runtime()
        first = await observed(rt, name)

        async def restarted() -> Observed | None:
            seen = await observed(rt, name)
            return seen if seen.state == "running" else None

        own = await eventually(restarted, what="the workload to be started afresh")
        await rt.remove(name, timeout_s=1)

        # Gone while no agent ran (as after a reboot): started again at once, no backoff.
        assert first.state == "running"
        assert first.runtime_id not in ("", str(stranger.pid))
        assert own.runtime_id not in ("", str(stranger.pid))
        assert stranger.returncode is None
        assert not gone(stranger.pid)  # never signalled
    finally:
        stranger.kill()
        await stranger.wait()


async def test_remove_kills_the_whole_process_group_even_when_it_ignores_sigterm(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("group")
    script = "trap '' TERM; sleep 600 & sleep 600 & wait"
    started = await rt.start(ref_for(name, ["sh", "-c", script]))
    pid = int(started.runtime_id)

    async def three_members() -> list[int] | None:
        members = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == pid]
        return members if len(members) == 3 else None

    members = await eventually(three_members, what="sh and its two sleeps")
    began = time.monotonic()
    await rt.remove(name, timeout_s=0.3)

    assert all(gone(member) for member in members)
    assert time.monotonic() - began < 5
    assert await rt.list_owned() == []
    assert not rt.log_path(name).exists()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


async def test_memory_limits_change_live_and_cpu_limits_are_reported_as_not_enforced(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("limits")
    ref = ref_for(name, ["sleep", "600"], resources=Resources(cpu=0.5, memory_mb=64))
    pid = int((await rt.start(ref)).runtime_id)

    memory_only = await rt.update_resources(name, Resources(cpu=0.5, memory_mb=128))
    limit = limit_line(pid, "Max address space")[:2]
    with_cpu = await rt.update_resources(name, Resources(cpu=1.0, memory_mb=128))
    seen = await observed(rt, name)

    assert memory_only.applied
    assert limit == [str(128 * MIB), agent_hard_limit()]  # the hard one stays as inherited
    assert not with_cpu.applied
    assert CPU_NOT_ENFORCED in with_cpu.message
    assert seen.runtime_id == str(pid)
    new_spec = ref.spec.model_copy(update={"resources": Resources(cpu=1.0, memory_mb=128)})
    assert seen.spec_hash == spec_hash(new_spec)


async def test_exec_runs_with_the_workload_env_and_cwd_and_times_out(
    make_runtime: MakeRuntime, tmp_path: Path
) -> None:
    rt = make_runtime()
    name = unique("exec")
    await rt.start(ref_for(name, ["sleep", "600"], env={"GREETING": "hi"}, cwd=str(tmp_path)))

    said = await rt.exec(name, ["sh", "-c", "echo $GREETING; pwd; exit 4"], timeout_s=5)
    missing = await rt.exec(name, ["no-such-probe"], timeout_s=5)
    began = time.monotonic()
    hung = await rt.exec(name, ["sleep", "60"], timeout_s=0.3)

    assert (said.exit_code, said.output) == (4, f"hi\n{tmp_path}\n")
    assert missing.exit_code == 127
    assert hung.exit_code == 124
    assert time.monotonic() - began < 5


async def test_a_missing_command_or_cwd_fails_prepare_and_start_permanently(
    make_runtime: MakeRuntime, tmp_path: Path
) -> None:
    rt = make_runtime()
    no_command = ref_for(unique("nocmd"), ["no-such-program-edgefleet"])
    no_cwd = ref_for(unique("nocwd"), ["sleep", "1"], cwd=str(tmp_path / "absent"))

    with pytest.raises(PermanentRuntimeError, match="command not found: no-such-program"):
        await rt.prepare(no_command)
    with pytest.raises(PermanentRuntimeError, match="command not found: no-such-program"):
        await rt.start(no_command)
    with pytest.raises(PermanentRuntimeError, match=r"working directory .*absent does not exist"):
        await rt.start(no_cwd)
    assert await rt.list_owned() == []


async def test_usage_reports_cpu_after_a_first_sample_and_resident_memory(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("busy")
    await rt.start(ref_for(name, ["sh", "-c", "while :; do :; done"]))

    first = (await rt.usage())[name]
    await asyncio.sleep(0.3)
    second = (await rt.usage())[name]

    assert first.cpu_pct is None
    assert second.cpu_pct is not None
    assert second.cpu_pct > 0
    assert second.memory_mb is not None
    assert second.memory_mb > 0
    assert second.memory_pct == pytest.approx(second.memory_mb / 64 * 100)


async def test_the_background_supervisor_restarts_without_being_asked(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime(auto_supervise=True, supervise_interval_s=0.05)
    name = unique("auto")
    await rt.start(ref_for(name, ["sh", "-c", "echo started; exit 1"]))

    async def three_runs() -> bool:
        return rt.log_path(name).read_text().count("started\n") >= 3

    await eventually(three_runs, what="the supervisor to restart it twice")
    await rt.close()


async def test_the_memory_limit_is_enforced_on_allocation(make_runtime: MakeRuntime) -> None:
    rt = make_runtime()
    name = unique("greedy")
    allocate = "import sys; b = bytearray(300 * 2**20); sys.exit(0)"
    await rt.start(
        ref_for(
            name,
            [sys.executable, "-c", allocate],
            restart="never",
            resources=Resources(memory_mb=150),
        )
    )

    async def ended() -> Observed | None:
        seen = await observed(rt, name)
        return seen if seen.state in ("failed", "stopped") else None

    seen = await eventually(ended, what="the allocation to fail")
    assert (seen.state, seen.exit_code) == ("failed", 1)
    assert "MemoryError" in rt.log_path(name).read_text()


async def test_restart_replaces_the_process_and_counts_it(make_runtime: MakeRuntime) -> None:
    rt = make_runtime()
    name = unique("again")
    first = await rt.start(ref_for(name, ["sleep", "600"], stop_timeout_s=1))

    await rt.restart(name)
    seen = await observed(rt, name)

    assert (seen.state, seen.restarts) == ("running", 1)
    assert seen.runtime_id not in ("", first.runtime_id)
    assert gone(int(first.runtime_id))


async def test_starting_a_workload_that_exists_never_leaves_two_running(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    name = unique("twice")
    ref = ref_for(name, ["sleep", "600"], stop_timeout_s=1)
    first = await rt.start(ref)

    second = await rt.start(ref)

    assert gone(int(first.runtime_id))
    assert [o.runtime_id for o in await rt.list_owned()] == [second.runtime_id]
