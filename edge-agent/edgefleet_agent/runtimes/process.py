"""The process runtime: workloads as plain processes on the gateway, no container engine.

The agent's executor calls it through the :class:`~edgefleet_agent.core.runtime.Runtime`
seam. Decisions (restart or not, backoff, what to report) are pure functions in
:mod:`process_policy`; OS work (spawn, identify, signal, reap, logs) is in
:mod:`process_control`, and what a start needs (env, checks) in :mod:`process_launch`;
this module ties them together and owns the state.

How a workload runs:

* ``argv`` from ``spec.command`` (no shell), ``spec.env`` over a minimal base env (PATH, LANG,
  HOME, ``EDGEFLEET_WORKLOAD/APP/NODE``), ``spec.cwd``, as ``spec.user`` or ``default_user``.
* Its own session and process group. A SIGTERM/SIGINT to the agent does not reach it, and
  the agent does not kill it on exit: **a clean agent stop leaves workloads running**, and
  the next agent start adopts them from ``state_dir/processes.json`` (pid *and* create time
  must match, so a recycled pid is never adopted). Under systemd the agent's unit needs
  ``KillMode=process``: the default (control-group) would kill the workloads with the agent.
* stdout/stderr go to ``state_dir/logs/<workload>.log``, opened O_APPEND by the process
  itself, so logging does not depend on the agent. Logs past ``log_max_bytes`` keep their
  newest half (checked on every supervision pass).
* Memory: RLIMIT_AS (virtual address space, so stricter than a cgroup's RSS limit: runtimes
  that reserve much address space, e.g. JVMs, need headroom) set before exec and changed
  live with prlimit. CPU: **not enforced** (that needs cgroups); every running workload's
  message and every cpu change say so, and ``update_resources`` returns ``applied=False``
  when the cpu changed.

Restart ownership: this runtime restarts exited processes per ``spec.restart`` with
exponential backoff (1 s, 2 s, 4 s … 60 s; back to 1 s after 60 s of stable running),
reported as ``starting`` with "exited with code N; restarting in X s". That needs a
periodic tick: :meth:`ProcessRuntime.supervise`. The runtime runs it itself in a background
task (started by the first call made from a running event loop, stopped by :meth:`close`),
every ``supervise_interval_s``; ``list_owned`` also runs one pass so what it reports is
fresh. Tests pass ``auto_supervise=False`` and call ``supervise()`` themselves. No change
to the seam was needed: ``close()`` already releases "background tasks".

Invariants: records change only under ``_lock``; a name in ``_busy`` (being removed or
restarted, which waits outside the lock) is skipped by supervision; ``_own`` holds the
names whose current pid is a child of this agent process (only those can be reaped with an
exit code; adopted ones are watched through /proc).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from edgefleet_protocol import Resources, WorkloadSpec, WorkloadUsage, spec_hash

from edgefleet_agent.core.runtime import (
    ExecResult,
    LogRead,
    Observed,
    PermanentRuntimeError,
    ResourceUpdate,
    RuntimeError_,
    WorkloadRef,
)
from edgefleet_agent.runtimes import process_logs
from edgefleet_agent.runtimes.process_control import (
    WorkloadGroup,
    cap_log,
    is_alive,
    kill_leftovers,
    matching,
    peek_child_exit,
    reap,
    reap_if_zombie_child,
    set_memory_limit,
    stop_group,
)
from edgefleet_agent.runtimes.process_launch import MIB, launch, startable_argv, workload_env
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
from edgefleet_agent.runtimes.process_probe import UsageSampler, run_probe
from edgefleet_agent.runtimes.process_registry import load_registry, save_registry

log = logging.getLogger(__name__)


class ProcessRuntime:
    """Plain processes owned through a registry in ``state_dir``. See the module docstring."""

    name = "process"

    def __init__(
        self,
        state_dir: Path | str,
        node: str,
        *,
        log_max_bytes: int = 10 * MIB,
        clock: Callable[[], float] = time.time,
        backoff: RestartBackoff | None = None,
        supervise_interval_s: float = 0.5,
        auto_supervise: bool = True,
        secrets: Callable[[WorkloadSpec], dict[str, str]] | None = None,
        default_user: str | None = None,
    ) -> None:
        self.node = node
        self.default_user, self._secrets = default_user, secrets or (lambda spec: {})
        self.state_dir = Path(state_dir)
        self.logs_dir = self.state_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_max_bytes = log_max_bytes
        self.backoff = backoff or RestartBackoff()
        self.supervise_interval_s = supervise_interval_s
        self._auto_supervise = auto_supervise
        self._clock = clock
        self._registry_path = self.state_dir / "processes.json"
        self._lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._busy: set[str] = set()
        self._own: set[str] = set()
        self._groups: dict[str, WorkloadGroup] = {}
        self._sampler = UsageSampler()
        self._task: asyncio.Task[None] | None = None
        self._records = load_registry(self._registry_path, node)
        self._adopt()

    # -- state --------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    async def read_log(self, name: str, *, tail: int, cursor: str | None) -> LogRead:
        """Logs on demand (:class:`~edgefleet_agent.core.runtime.LogReader`)."""
        path = self.log_path(name)
        if cursor is None:
            return await asyncio.to_thread(process_logs.read_tail, path, tail)
        return await asyncio.to_thread(process_logs.read_after, path, cursor)

    def _adopt(self) -> None:
        """Keep what still runs from a previous agent; what died meanwhile is an exit."""
        now = self._clock()
        changed = False
        for name, record in list(self._records.items()):
            if record.phase != "running" or record.pid is None or record.create_time is None:
                continue
            group = WorkloadGroup(record.pid, record.create_time)
            if is_alive(record.pid, record.create_time):
                group.remember()
                self._groups[name] = group
                log.info("adopted %s (pid %s)", name, record.pid)
                continue
            exited = after_exit(record, exit_code=None, now=now, backoff=self.backoff)
            if exited.phase == "backoff":
                # Gone while no agent ran (most often a gateway reboot): bring it back now,
                # not after a restart backoff meant for crash loops.
                exited = exited.model_copy(
                    update={"next_start_at": now, "message": "gone since the last agent run"}
                )
            self._records[name] = exited
            changed = True
            log.warning("%s (pid %s) is gone since the last agent run", name, record.pid)
        if changed:
            save_registry(self._registry_path, self.node, self._records)

    async def _save(self) -> None:
        # Saves run in worker threads; one at a time, so the newest snapshot lands last and
        # two writers never race over the temp file (seen as a rename of a vanished file).
        async with self._save_lock:
            snapshot = dict(self._records)
            await asyncio.to_thread(save_registry, self._registry_path, self.node, snapshot)

    def _spawn(self, record: ProcessRecord, *, restarted: bool) -> ProcessRecord:
        """Start the record's process (secrets opened per launch, never stored), or raise."""
        spawned = launch(record, node=self.node, log_path=self.log_path(record.name),
                         user=self.default_user, secret_env=self._secrets(record.spec))  # fmt: skip
        self._own.add(record.name)
        self._groups[record.name] = WorkloadGroup(spawned.pid, spawned.create_time)
        return after_start(
            record,
            pid=spawned.pid,
            create_time=spawned.create_time,
            now=self._clock(),
            restarted=restarted,
        )

    def _exit_of(self, name: str, record: ProcessRecord) -> tuple[bool, int | None]:
        """Whether the record's process has exited, and its exit code if we can know it."""
        assert record.pid is not None and record.create_time is not None
        group = self._groups.setdefault(name, WorkloadGroup(record.pid, record.create_time))
        if name in self._own:
            try:
                code = peek_child_exit(record.pid)
            except ChildProcessError:
                self._own.discard(name)  # reaped elsewhere: watch it like an adopted one
            else:
                if code is None:
                    return False, None
                kill_leftovers(group)  # the zombie leader still reserves the group id
                reap(record.pid)
                return True, code
        proc = matching(record.pid, record.create_time)
        if proc is None:
            kill_leftovers(group)  # only members remembered while the leader lived
            return True, None
        try:
            zombie = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            zombie = True
        if not zombie:
            group.remember()
            return False, None
        kill_leftovers(group)
        reap_if_zombie_child(group)
        return True, None

    # -- supervision --------------------------------------------------------------------

    def _ensure_supervisor(self) -> None:
        if not self._auto_supervise or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.create_task(
            self._supervise_forever(), name=f"process-runtime-supervisor:{self.node}"
        )

    async def _supervise_forever(self) -> None:
        while True:
            try:
                await self.supervise()
            except Exception:  # one bad pass must not end supervision
                log.exception("process supervision pass failed")
            await asyncio.sleep(self.supervise_interval_s)

    async def supervise(self) -> None:
        """One pass: notice exits, restart what is due per policy, cap logs, persist."""
        async with self._lock:
            changed = False
            for name, record in list(self._records.items()):
                if name in self._busy:
                    continue
                now = self._clock()
                if record.phase == "running":
                    exited, code = self._exit_of(name, record)
                    if exited:
                        record = after_exit(record, exit_code=code, now=now, backoff=self.backoff)
                        log.info("%s: %s", name, record.message)
                        changed = True
                if due_for_restart(record, now):
                    try:
                        record = self._spawn(record, restarted=True)
                    except RuntimeError_ as exc:
                        permanent = isinstance(exc, PermanentRuntimeError)
                        record = after_failed_start(
                            record,
                            message=exc.message,
                            permanent=permanent,
                            now=now,
                            backoff=self.backoff,
                        )
                    changed = True
                self._records[name] = record
                if cap_log(self.log_path(name), self.log_max_bytes):
                    log.info("%s: log cut to its newest %d bytes", name, self.log_max_bytes // 2)
            if changed:
                await self._save()

    # -- the seam -----------------------------------------------------------------------

    async def available(self) -> bool:
        return True

    async def list_owned(self) -> list[Observed]:
        self._ensure_supervisor()
        await self.supervise()
        async with self._lock:
            return [observed_from_record(r) for r in self._records.values()]

    async def prepare(self, ref: WorkloadRef) -> None:
        """Fail early, and permanently, when the command or the working directory is missing."""
        record = ProcessRecord(name=ref.name, app=ref.app, spec=ref.spec, spec_hash=ref.spec_hash)
        startable_argv(record, workload_env(record, self.node))

    async def start(self, ref: WorkloadRef) -> Observed:
        self._ensure_supervisor()
        existing = self._records.get(ref.name)
        if existing is not None:
            # Never two of one workload: a leftover record is stopped first.
            await self.remove(ref.name, timeout_s=existing.spec.stop_timeout_s)
        record = ProcessRecord(name=ref.name, app=ref.app, spec=ref.spec, spec_hash=ref.spec_hash)
        async with self._lock:
            record = self._spawn(record, restarted=False)
            self._records[ref.name] = record
            await self._save()
        return observed_from_record(record)

    async def remove(self, name: str, *, timeout_s: float = 10.0) -> None:
        async with self._lock:
            record = self._records.get(name)
            if record is None:
                return
            self._busy.add(name)
            group = self._group_of(name, record)
            own = name in self._own
        try:
            if group is not None:
                await stop_group(group, own_child=own, timeout_s=timeout_s)
        finally:
            async with self._lock:
                self._records.pop(name, None)
                self._own.discard(name)
                self._groups.pop(name, None)
                self._busy.discard(name)
                await self._save()
        with contextlib.suppress(FileNotFoundError):
            self.log_path(name).unlink()

    def _group_of(self, name: str, record: ProcessRecord) -> WorkloadGroup | None:
        if record.phase != "running" or record.pid is None or record.create_time is None:
            return None
        return self._groups.setdefault(name, WorkloadGroup(record.pid, record.create_time))

    async def restart(self, name: str) -> None:
        self._ensure_supervisor()
        async with self._lock:
            record = self._require(name)
            self._busy.add(name)
            group = self._group_of(name, record)
            own = name in self._own
        try:
            if group is not None:
                await stop_group(group, own_child=own, timeout_s=record.spec.stop_timeout_s)
            async with self._lock:
                self._own.discard(name)
                try:
                    self._records[name] = self._spawn(record, restarted=True)
                except RuntimeError_ as exc:
                    self._records[name] = after_failed_start(
                        record,
                        message=exc.message,
                        permanent=isinstance(exc, PermanentRuntimeError),
                        now=self._clock(),
                        backoff=self.backoff,
                    )
                    raise
                finally:
                    await self._save()
        finally:
            self._busy.discard(name)

    def _require(self, name: str) -> ProcessRecord:
        record = self._records.get(name)
        if record is None:
            raise PermanentRuntimeError(f"no process workload named {name} on node {self.node}")
        return record

    async def exec(self, name: str, command: list[str], *, timeout_s: float) -> ExecResult:
        """Run ``command`` with the workload's env and cwd (see :func:`run_probe`)."""
        record = self._require(name)
        return await run_probe(
            command, env=workload_env(record, self.node), cwd=record.spec.cwd, timeout_s=timeout_s
        )

    async def update_resources(self, name: str, resources: Resources) -> ResourceUpdate:
        async with self._lock:
            record = self._require(name)
            group = self._group_of(name, record)
            refused = set_memory_limit(group, resources.memory_mb * MIB) if group else None
            if refused is not None:
                # The running process keeps its old limit, so it keeps its old spec hash.
                return ResourceUpdate(applied=False, message=f"memory limit not set: {refused}")
            spec = record.spec.model_copy(update={"resources": resources})
            self._records[name] = record.model_copy(
                update={"spec": spec, "spec_hash": spec_hash(spec)}
            )
            await self._save()
        if resources.cpu != record.spec.resources.cpu:
            return ResourceUpdate(applied=False, message=f"memory limit set; {CPU_NOT_ENFORCED}")
        return ResourceUpdate(applied=True)

    async def usage(self) -> dict[str, WorkloadUsage]:
        running = {
            name: (record.pid, record.create_time, record.spec.resources.memory_mb)
            for name, record in self._records.items()
            if record.phase == "running" and record.pid and record.create_time
        }
        return self._sampler.sample(running)

    async def close(self) -> None:
        """Stop supervising; the workloads keep running and are adopted at the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            await self._save()
