"""Starting one workload process: its environment, the checks before exec, the error kinds.

Split from :mod:`edgefleet_agent.runtimes.process` so the rules for *whether and how* a
command starts are on one screen: a command that cannot start (missing, not executable, a
cwd that does not exist) is a :class:`PermanentRuntimeError` reported at once, while an OS
hiccup (out of pids, EAGAIN) is a :class:`TransientRuntimeError` the executor retries.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgefleet_agent.core.runtime import PermanentRuntimeError, TransientRuntimeError
from edgefleet_agent.runtimes.process_control import Spawned, spawn
from edgefleet_agent.runtimes.process_policy import ProcessRecord

MIB = 1024 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def workload_env(record: ProcessRecord, node: str) -> dict[str, str]:
    """A minimal base environment with the workload's identity, under ``spec.env``."""
    base = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/"),
        "EDGEFLEET_WORKLOAD": record.name,
        "EDGEFLEET_APP": record.app or "",
        "EDGEFLEET_NODE": node,
    }
    return {**base, **record.spec.env}


def startable_argv(record: ProcessRecord, env: dict[str, str]) -> list[str]:
    """The argv, once the command resolves and the cwd exists (else a permanent error)."""
    argv = list(record.spec.command or [])
    if not argv:
        raise PermanentRuntimeError(f"workload {record.name}: runtime process needs a command")
    cwd = record.spec.cwd
    if cwd is not None and not os.path.isdir(cwd):
        raise PermanentRuntimeError(
            f"workload {record.name}: working directory {cwd} does not exist"
        )
    if os.sep in argv[0]:
        # A path: relative ones resolve against the workload's cwd, as exec will.
        program = os.path.join(cwd or "", argv[0])
        found = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        found = shutil.which(argv[0], path=env.get("PATH")) is not None
    if not found:
        raise PermanentRuntimeError(f"workload {record.name}: command not found: {argv[0]}")
    return argv


def launch(
    record: ProcessRecord,
    *,
    node: str,
    log_path: Path,
    secret_env: dict[str, str] | None = None,
    user: str | None = None,
) -> Spawned:
    """Start the record's process with its memory limit; a runtime error says why not.
    ``secret_env`` (opened sealed secrets) joins the environment and nothing else. It runs
    as its spec's ``user``, else as ``user`` (the agent's workload user), else as the agent."""
    run_as = record.spec.user or user
    env = {**workload_env(record, node), **(secret_env or {})}
    argv = startable_argv(record, env)
    try:
        return spawn(
            argv,
            env=env,
            cwd=record.spec.cwd,
            log_path=log_path,
            memory_bytes=record.spec.resources.memory_mb * MIB,
            user=run_as,
        )
    except KeyError as exc:
        raise PermanentRuntimeError(
            f"workload {record.name}: cannot run as {run_as}: no such user or group {exc}"
        ) from exc
    except FileNotFoundError as exc:
        raise PermanentRuntimeError(
            f"workload {record.name}: command not found: {argv[0]}"
        ) from exc
    except PermissionError as exc:
        if run_as is not None:
            raise PermanentRuntimeError(
                f"workload {record.name}: cannot run as user {run_as}: {exc.strerror}"
                " (the agent must run as root to switch users)"
            ) from exc
        raise PermanentRuntimeError(
            f"workload {record.name}: permission denied running {argv[0]}"
        ) from exc
    except OSError as exc:
        raise TransientRuntimeError(
            f"workload {record.name}: could not start {argv[0]}: {exc}"
        ) from exc
