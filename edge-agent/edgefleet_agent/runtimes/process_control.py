"""The OS side of the process runtime: spawn, identify, signal, reap, cap logs.

Called only by :mod:`edgefleet_agent.runtimes.process`. Everything here is about never
hurting a process that is not ours:

* A process is identified by ``(pid, create_time)``; a pid alone may have been recycled.
* Each workload leads its own session and process group (``start_new_session``), so the
  group id equals the leader's pid. A group is signalled with ``killpg`` only while the
  leader provably exists (alive, or a zombie with the recorded create_time): the kernel does
  not reuse a pid that is still held by a process or used as a group id, so the group is
  then certainly ours. Once the leader is gone and reaped, the group id proves nothing (a
  daemon that double-forks leaves exactly such leaderless groups), so only members whose
  identity was recorded earlier are signalled, one by one.
* Our own children are not reaped until they have been cleaned up: ``waitid(WNOWAIT)``
  reads the exit status and leaves the zombie in place, which keeps the pid and the group
  id reserved while stragglers in the group are killed.

Workloads that leave their process group (``setsid`` daemons) escape all of this; without
cgroups there is no way to follow them. That is documented for users of the runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

IDENTITY_TOLERANCE_S = 0.02  # create_time has clock-tick (10 ms) resolution
Identity = tuple[int, float]


class _UnwaitedPopen(subprocess.Popen[bytes]):
    """A Popen that does not warn when dropped while its child runs.

    The process runtime reaps its children itself (``supervise``/``remove``) and, on
    purpose, leaves them running when the agent stops; the stdlib's "still running"
    ResourceWarning would be a false alarm for every workload.
    """

    def __del__(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Spawned:
    pid: int
    create_time: float


def _identity(text: str) -> str | int | None:
    """``"1000"`` -> 1000, ``"edge"`` -> ``"edge"``, ``""`` -> None (do not switch)."""
    if not text:
        return None
    return int(text) if text.isdigit() else text


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str | None,
    log_path: Path,
    memory_bytes: int,
    user: str | None = None,
) -> Spawned:
    """Start ``argv`` (no shell) as the leader of a new session, output appended to
    ``log_path`` by the process itself (so logging survives the agent), with the RLIMIT_AS
    soft limit set before exec (see :func:`memory_rlimit`).

    ``user`` (``USER`` or ``USER:GROUP``, names or ids) runs the process as that user
    (``subprocess`` switches after fork; it needs the agent to be allowed to, i.e. root).

    Raises FileNotFoundError / PermissionError / OSError as ``subprocess`` does, KeyError
    for a user or group that does not exist.
    """
    name, _, group = (user or "").partition(":")
    run_as = _identity(name)
    run_group = _identity(group)
    # setrlimit is called directly as preexec_fn (a C builtin, no Python code runs in the
    # forked child), which keeps the usual preexec-with-threads hazard out of the picture.
    limit_memory = functools.partial(
        resource.setrlimit, resource.RLIMIT_AS, memory_rlimit(memory_bytes, _agent_hard_limit())
    )
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    try:
        child = _UnwaitedPopen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=limit_memory,
            user=run_as,
            group=run_group,
        )
    finally:
        os.close(fd)
    # Our unreaped child: readable even if it has already exited (a zombie).
    return Spawned(pid=child.pid, create_time=psutil.Process(child.pid).create_time())


def peek_child_exit(pid: int) -> int | None:
    """Exit code of our exited child *without reaping it*; None while it runs.

    Signals become ``128 + signal``, as a shell reports them. Raises ChildProcessError when
    ``pid`` is not (or no longer) our child.
    """
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else 128 + info.si_status


def reap(pid: int) -> None:
    """Collect our exited child (no-op if it is not our child or already collected)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def reap_if_zombie_child(group: WorkloadGroup) -> None:
    """Collect the leader if it is a zombie with the recorded identity *and* happens to be
    our child (adopted by a runtime re-created within the same agent process). The zombie's
    identity proves the pid is not recycled, so nothing else can be collected by mistake."""
    proc = matching(group.pid, group.create_time)
    if proc is not None and not _alive(proc):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(group.pid, os.WNOHANG)


def matching(pid: int, create_time: float) -> psutil.Process | None:
    """The process with this identity (alive or zombie), or None."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) <= IDENTITY_TOLERANCE_S:
            return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return None


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_alive(pid: int, create_time: float) -> bool:
    proc = matching(pid, create_time)
    return proc is not None and _alive(proc)


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _alive(proc):
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return members


def identities(procs: Iterable[psutil.Process]) -> set[Identity]:
    found = set()
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            found.add((proc.pid, proc.create_time()))
    return found


class WorkloadGroup:
    """The process group of one workload, signalled only while it is provably ours."""

    def __init__(self, pid: int, create_time: float) -> None:
        self.pid = pid
        self.create_time = create_time
        self.known: set[Identity] = set()

    def provable(self) -> bool:
        return matching(self.pid, self.create_time) is not None

    def remember(self) -> None:
        """Record current members while the leader proves the group is ours."""
        if self.provable():
            self.known |= identities(group_members(self.pid))

    def members(self) -> list[psutil.Process]:
        if self.provable():
            return group_members(self.pid)
        return [p for p in (matching(pid, ct) for pid, ct in self.known) if p and _alive(p)]

    def send(self, sig: signal.Signals) -> None:
        if self.provable():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            return
        for proc in self.members():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.send_signal(sig)


async def stop_group(
    group: WorkloadGroup, *, own_child: bool, timeout_s: float, poll_s: float = 0.05
) -> int | None:
    """SIGTERM the whole group, wait up to ``timeout_s``, SIGKILL what is left, reap.

    Returns the leader's exit code when it was our child (None otherwise or if unknown).
    """
    group.remember()
    group.send(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    killed = False
    while group.members():
        now = time.monotonic()
        if now >= deadline:
            if killed:
                log.warning("process group %s survived SIGKILL; giving up on it", group.pid)
                break
            group.send(signal.SIGKILL)
            killed, deadline = True, now + 5.0
        await asyncio.sleep(poll_s)
        group.remember()
    if not own_child:
        reap_if_zombie_child(group)
        return None
    try:
        code = peek_child_exit(group.pid)
    except ChildProcessError:
        return None
    reap(group.pid)
    return code


def kill_leftovers(group: WorkloadGroup) -> None:
    """After the leader exited: SIGKILL whatever of its group is still around (as systemd's
    default KillMode does), so a restart never runs next to the previous incarnation."""
    if group.members():
        group.send(signal.SIGKILL)


def _agent_hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_AS)[1]


def memory_rlimit(memory_bytes: int, hard: int) -> tuple[int, int]:
    """(soft, hard) for RLIMIT_AS: the soft limit enforces, the hard one stays as it was.

    Raising a hard limit needs CAP_SYS_RESOURCE, which agents (even as root in a container)
    often lack; a hard limit pinned to the workload's size would make every later increase
    impossible. The workload could raise its own soft limit, so this is a guard rail
    against runaway memory, not a security boundary (nor is RLIMIT_AS in general).
    """
    if hard != resource.RLIM_INFINITY and memory_bytes > hard:
        return hard, hard
    return memory_bytes, hard


def set_memory_limit(group: WorkloadGroup, memory_bytes: int) -> str | None:
    """Set the RLIMIT_AS soft limit of every live member; an error text if any refused."""
    errors = []
    group.remember()
    for proc in group.members():
        try:
            hard = proc.rlimit(psutil.RLIMIT_AS)[1]
            proc.rlimit(psutil.RLIMIT_AS, memory_rlimit(memory_bytes, hard))
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
        except (psutil.AccessDenied, PermissionError, OSError) as exc:
            errors.append(f"pid {proc.pid}: {exc}")
    return "; ".join(errors) or None


def cap_log(path: Path, max_bytes: int) -> bool:
    """Keep a log under ``max_bytes``: past it, keep the newest half (from a line start).

    The workload appends with O_APPEND, so it never writes into the middle of the copy;
    a line written during the few microseconds between truncate and rewrite lands before
    the kept tail rather than after it. Returns whether the log was cut.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    keep = max_bytes // 2
    with path.open("rb") as src:
        # One byte more than kept, to see whether the kept part starts at a line start.
        src.seek(size - keep - 1)
        data = src.read(keep + 1)
    newline = data.find(b"\n")
    tail = data[newline + 1 :] if 0 <= newline < len(data) - 1 else data[1:]
    os.truncate(path, 0)
    with path.open("ab") as dst:
        dst.write(f"[edgefleet: log cut at {size} bytes; newest part kept]\n".encode())
        dst.write(tail)
    return True
