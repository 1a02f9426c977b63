"""Looking at process workloads from outside: exec probes and CPU/memory sampling.

Used by :class:`~edgefleet_agent.runtimes.process.ProcessRuntime` for ``exec`` (the agent's
exec health checks) and ``usage`` (telemetry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import psutil
from edgefleet_protocol import WorkloadUsage

from edgefleet_agent.core.runtime import ExecResult
from edgefleet_agent.runtimes.process_control import Identity, matching

log = logging.getLogger(__name__)

MIB = 1024 * 1024
EXEC_TIMED_OUT = 124  # GNU timeout's code: a probe that hangs is a failed probe
MAX_EXEC_OUTPUT = 4096


async def run_probe(
    command: list[str], *, env: dict[str, str], cwd: str | None, timeout_s: float
) -> ExecResult:
    """Run ``command`` (no shell) in its own process group; past ``timeout_s`` the whole
    group is killed and the result is exit code 124. A missing command is exit code 127,
    as a shell would report it: a failed probe, not an agent error."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        return ExecResult(exit_code=127, output=f"command not found: {command[0]}")
    except PermissionError:
        return ExecResult(exit_code=126, output=f"permission denied: {command[0]}")
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    except TimeoutError:
        # Still our unreaped child, so its group id is certainly ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(proc.communicate(), timeout=5.0)
        except TimeoutError:  # a descendant left the group and holds the pipe open
            log.warning("probe %s: output pipe still open after the kill", command)
        return ExecResult(
            exit_code=EXEC_TIMED_OUT, output=f"timed out after {timeout_s:g} s: {command}"
        )
    text = output.decode(errors="replace") if output else ""
    return ExecResult(exit_code=proc.returncode or 0, output=text[-MAX_EXEC_OUTPUT:])


class UsageSampler:
    """CPU (percent of one core, as ``docker stats``) and RSS per workload, descendants
    included. psutil measures CPU between two calls on the same Process object, so those
    objects are kept per process identity; a workload's first sample has no cpu figure."""

    def __init__(self) -> None:
        self._procs: dict[Identity, psutil.Process] = {}

    def sample(self, running: dict[str, tuple[int, float, int]]) -> dict[str, WorkloadUsage]:
        """``running`` maps workload name to (pid, create_time, memory limit in MB)."""
        usage: dict[str, WorkloadUsage] = {}
        seen: set[Identity] = set()
        for name, (pid, create_time, memory_mb) in running.items():
            leader = matching(pid, create_time)
            if leader is None:
                continue
            try:
                procs = [leader, *leader.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            cpu: float | None = 0.0
            rss = 0
            for proc in procs:
                try:
                    key = (proc.pid, proc.create_time())
                    unsampled = key not in self._procs
                    sampler = self._procs.setdefault(key, proc)
                    percent = sampler.cpu_percent(None)
                    rss += sampler.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                seen.add(key)
                if unsampled and proc is leader:
                    cpu = None
                elif cpu is not None:
                    cpu += percent
            usage[name] = WorkloadUsage(
                cpu_pct=cpu, memory_mb=rss / MIB, memory_pct=rss / (memory_mb * MIB) * 100.0
            )
        self._procs = {k: v for k, v in self._procs.items() if k in seen}
        return usage
