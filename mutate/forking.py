"""One forked child per mutant, silenced, reaped within a deadline: what all three of
``make mutate``'s ways of trying a mutant (engine.py in-process, run.py cold, slow.py warm)
do alike, so each says only what it runs in the child and how it reads the exit code."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable


def fork_quiet(body: Callable[[], int], *, on_error: int) -> int:
    """Fork; the child silences stdout and stderr, runs ``body`` and exits with its result
    (``on_error`` if it raised: a child must never return into the parent's code). The
    parent gets the child's pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os._exit(int(body()))
        except BaseException:
            os._exit(on_error)
    return pid


def reap(pid: int, deadline_s: float, *, poll_s: float = 0.02) -> int | None:
    """Child ``pid``'s exit code, or ``None`` when it ran past ``deadline_s`` (it is then
    killed and reaped: no stray child keeps a core busy)."""
    end = time.monotonic() + deadline_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(poll_s)
