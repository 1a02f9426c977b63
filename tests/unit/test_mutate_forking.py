"""make mutate's one child per mutant: the exit code is the verdict's input, a child that
raises exits with the caller's error code, and one past its deadline is killed and reaped
(a stray child would keep one of the two shared cores busy)."""

from __future__ import annotations

import os
import time

from mutate.forking import fork_quiet, reap


def test_the_childs_result_is_its_exit_code() -> None:
    assert reap(fork_quiet(lambda: 7, on_error=70), deadline_s=60) == 7


def test_a_child_that_raises_exits_with_the_error_code_and_never_returns() -> None:
    def boom() -> int:
        raise RuntimeError("a mutant broke the import")

    assert reap(fork_quiet(boom, on_error=70), deadline_s=60) == 70


def test_a_child_past_its_deadline_is_killed_and_reaped() -> None:
    pid = fork_quiet(lambda: time.sleep(600) or 0, on_error=70)
    assert reap(pid, deadline_s=0.05) is None
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # reaped already: no zombie left behind
    else:
        raise AssertionError("the child was not reaped")
