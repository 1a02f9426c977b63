"""What the process runtime decides, as pure functions over :class:`ProcessRecord` values.

The process runtime owns restarts on exit (there is no daemon to do it, unlike Docker).
These functions make every decision — restart or not, after how long, what to report — from
plain values and a ``now`` passed in, so the tests are tables. The shell
(:mod:`edgefleet_agent.runtimes.process`) only observes exits and spawns processes.

Phases of a record and how they are reported:

``running``  the process is alive                       -> state ``running``
``backoff``  it exited and will be started again later  -> state ``starting``
``failed``   it exited non-zero and policy says no more -> state ``failed``
``stopped``  it exited 0 and policy says no more        -> state ``stopped``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgefleet_protocol import WorkloadSpec
from edgefleet_protocol.node_messages import WorkloadState
from pydantic import BaseModel, ConfigDict, Field

from edgefleet_agent.core.runtime import Observed

Phase = Literal["running", "backoff", "failed", "stopped"]

CPU_NOT_ENFORCED = "cpu limit not enforced by the process runtime (no cgroups)"


@dataclass(frozen=True, slots=True)
class RestartBackoff:
    """Exponential restart delay: base, 2*base, 4*base ... capped; a process that ran for
    ``stable_after_s`` before exiting starts the sequence again at ``base_s``."""

    base_s: float = 1.0
    cap_s: float = 60.0
    stable_after_s: float = 60.0

    def next_delay(self, previous_s: float | None, ran_for_s: float) -> float:
        if previous_s is None or ran_for_s >= self.stable_after_s:
            return min(self.base_s, self.cap_s)
        return min(previous_s * 2.0, self.cap_s)


class ProcessRecord(BaseModel):
    """One workload of the process runtime, as persisted in ``processes.json``.

    ``pid`` + ``create_time`` identify the process: a pid alone may have been recycled by
    the kernel, the pair cannot (within ``create_time``'s 10 ms resolution).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    app: str | None = None
    spec: WorkloadSpec
    spec_hash: str
    phase: Phase = "running"
    pid: int | None = None
    create_time: float | None = None
    started_at: float = 0.0
    restarts: int = Field(default=0, ge=0)
    exit_code: int | None = None
    exited_at: float | None = None
    last_delay_s: float | None = None
    next_start_at: float | None = None
    message: str = ""


def describe_exit(exit_code: int | None) -> str:
    if exit_code is None:
        return "exited (exit code unknown: it was not started by this agent process)"
    if exit_code > 128:
        return f"exited with code {exit_code} (killed by signal {exit_code - 128})"
    return f"exited with code {exit_code}"


def after_exit(
    record: ProcessRecord, *, exit_code: int | None, now: float, backoff: RestartBackoff
) -> ProcessRecord:
    """The record once its process has exited: restart later, or stay down, per policy.

    An unknown exit code (an adopted process whose parent was not us) counts as a failure,
    so ``on-failure`` restarts it: a workload that vanished is more likely broken than done.
    """
    what = describe_exit(exit_code)
    failed = exit_code != 0
    restart = record.spec.restart == "always" or (record.spec.restart == "on-failure" and failed)
    gone = {"pid": None, "create_time": None, "exit_code": exit_code, "exited_at": now}
    if not restart:
        phase: Phase = "failed" if failed else "stopped"
        return record.model_copy(
            update={**gone, "phase": phase, "next_start_at": None, "message": what}
        )
    delay = backoff.next_delay(record.last_delay_s, now - record.started_at)
    return record.model_copy(
        update={
            **gone,
            "phase": "backoff",
            "last_delay_s": delay,
            "next_start_at": now + delay,
            "message": f"{what}; restarting in {delay:g} s",
        }
    )


def after_failed_start(
    record: ProcessRecord, *, message: str, permanent: bool, now: float, backoff: RestartBackoff
) -> ProcessRecord:
    """The record when a restart could not even spawn: a permanent cause (command gone)
    ends in ``failed``; anything else waits for the next, longer, delay."""
    gone = {"pid": None, "create_time": None, "exited_at": now, "exit_code": None}
    if permanent:
        return record.model_copy(
            update={**gone, "phase": "failed", "next_start_at": None, "message": message}
        )
    delay = backoff.next_delay(record.last_delay_s, 0.0)
    return record.model_copy(
        update={
            **gone,
            "phase": "backoff",
            "last_delay_s": delay,
            "next_start_at": now + delay,
            "message": f"{message}; retrying in {delay:g} s",
        }
    )


def due_for_restart(record: ProcessRecord, now: float) -> bool:
    return record.phase == "backoff" and now >= (record.next_start_at or 0.0)


def after_start(
    record: ProcessRecord, *, pid: int, create_time: float, now: float, restarted: bool
) -> ProcessRecord:
    """The record once a process runs for it; the backoff delay is kept until it has run
    stably (see :meth:`RestartBackoff.next_delay`)."""
    return record.model_copy(
        update={
            "phase": "running",
            "pid": pid,
            "create_time": create_time,
            "started_at": now,
            "restarts": record.restarts + (1 if restarted else 0),
            "next_start_at": None,
            "message": CPU_NOT_ENFORCED,
        }
    )


_STATES: dict[Phase, WorkloadState] = {
    "running": "running",
    "backoff": "starting",
    "failed": "failed",
    "stopped": "stopped",
}


def observed_from_record(record: ProcessRecord) -> Observed:
    running = record.phase == "running"
    return Observed(
        name=record.name,
        app=record.app,
        spec_hash=record.spec_hash,
        state=_STATES[record.phase],
        runtime_id=str(record.pid) if running and record.pid is not None else "",
        restarts=record.restarts,
        since=record.started_at if running else (record.exited_at or record.started_at),
        health="unknown",
        exit_code=None if running else record.exit_code,
        message=record.message,
    )
