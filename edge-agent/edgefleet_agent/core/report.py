"""Build the ``reported`` workloads, purely, from what the agent knows after a pass.

Every desired workload gets an entry (running, or why not); owned workloads that are no
longer desired appear too, until they are gone, because ``reported`` tells what actually
runs. Messages are stable between passes (no countdowns), so an unchanged node produces an
identical report and the agent publishes nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgefleet_protocol import DesiredWorkload, WorkloadReport
from edgefleet_protocol.node_messages import WorkloadState

from edgefleet_agent.core.backoff import BackoffEntry
from edgefleet_agent.core.planner import OwnedWorkload

MAX_MESSAGE = 2048


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def workload_reports(
    *,
    desired: Sequence[DesiredWorkload],
    owned: Sequence[OwnedWorkload],
    backoff: Mapping[str, BackoffEntry],
    progress: Mapping[str, WorkloadState],
    unavailable: Mapping[str, str],
    pending_since: float,
) -> dict[str, WorkloadReport]:
    """One report per desired or owned workload name.

    ``owned`` carries effective hashes and the agent's health verdicts; ``progress`` names
    workloads a step is working on right now; ``unavailable`` maps runtimes that could not
    be listed to the reason.
    """
    reports: dict[str, WorkloadReport] = {}
    for d in desired:
        entry = backoff.get(d.name)
        relevant = entry if entry is not None and entry.spec_hash == d.spec_hash else None
        current = next((o for o in owned if o.name == d.name and o.runtime == d.spec.runtime), None)
        if current is not None:
            reports[d.name] = _running_report(d, current, relevant, progress.get(d.name))
            continue
        runtime_problem = unavailable.get(d.spec.runtime)
        state: WorkloadState
        if d.name in progress:
            state, message = progress[d.name], ""
        elif runtime_problem is not None:
            state, message = "pending", f"runtime {d.spec.runtime} unavailable: {runtime_problem}"
        elif relevant is not None:
            state, message = "failed", relevant.describe()
        else:
            state, message = "pending", "waiting to be started"
        reports[d.name] = WorkloadReport(
            app=d.app,
            spec_hash=d.spec_hash,
            state=state,
            health="unknown",
            since=pending_since,
            message=_clip(message),
        )
    wanted = {d.name for d in desired}
    for o in owned:
        if o.name in wanted:
            continue
        entry = backoff.get(o.name)
        note = entry.describe() if entry is not None and entry.spec_hash == o.spec_hash else ""
        obs = o.observed
        reports[o.name] = WorkloadReport(
            app=obs.app,
            spec_hash=o.spec_hash,
            state=obs.state,
            health=obs.health,
            restarts=obs.restarts,
            since=obs.since,
            message=_clip(_join("no longer desired; removing", note)),
        )
    return reports


def _running_report(
    d: DesiredWorkload,
    current: OwnedWorkload,
    entry: BackoffEntry | None,
    in_progress: WorkloadState | None,
) -> WorkloadReport:
    obs = current.observed
    state: WorkloadState = obs.state
    message = ""
    if state == "running" and obs.health == "unhealthy":
        state = "unhealthy"
        message = _join("health check failing", obs.message)
    elif state != "running":
        message = obs.message or f"workload is {state}"
    if current.spec_hash != d.spec_hash:
        update = f"updating from {current.spec_hash} to {d.spec_hash}"
        message = _join(message, update)
        if in_progress is not None:
            state = in_progress
    if entry is not None and (state != "running" or current.spec_hash != d.spec_hash):
        message = _join(message, entry.describe())
    return WorkloadReport(
        app=obs.app or d.app,
        spec_hash=current.spec_hash,
        state=state,
        health=obs.health,
        restarts=obs.restarts,
        since=obs.since,
        message=_clip(message),
    )
