"""The reported workloads: a state and, for anything not running, a reason."""

from __future__ import annotations

from typing import Any

from edgefleet_agent.core.backoff import BackoffEntry
from edgefleet_agent.core.planner import OwnedWorkload
from edgefleet_agent.core.report import workload_reports
from edgefleet_agent.core.runtime import Observed
from edgefleet_protocol import DesiredWorkload, WorkloadSpec, spec_hash

SPEC = WorkloadSpec(runtime="process", command=["sleep", "9"])
NEW = WorkloadSpec(runtime="process", command=["sleep", "10"])
H, H2 = spec_hash(SPEC), spec_hash(NEW)


def want(name: str = "w1", spec: WorkloadSpec = SPEC) -> DesiredWorkload:
    return DesiredWorkload(name=name, app="a", spec=spec, spec_hash=spec_hash(spec))


def have(name: str = "w1", h: str = H, **fields: Any) -> OwnedWorkload:
    data: dict[str, Any] = {"state": "running", "runtime_id": "p1", "since": 5.0}
    data.update(fields)
    return OwnedWorkload("process", Observed(name=name, app="a", spec_hash=h, **data))


def report(desired: list[DesiredWorkload], owned: list[OwnedWorkload], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"backoff": {}, "progress": {}, "unavailable": {}, "pending_since": 1.0}
    args.update(kw)
    reports = workload_reports(desired=desired, owned=owned, **args)
    return {name: (r.state, r.spec_hash, r.message) for name, r in reports.items()}


def test_a_running_workload_has_no_message() -> None:
    assert report([want()], [have()]) == {"w1": ("running", H, "")}


def test_a_workload_not_started_yet_is_pending() -> None:
    assert report([want()], []) == {"w1": ("pending", H, "waiting to be started")}


def test_a_failed_start_says_why_and_when_it_retries() -> None:
    entry = BackoffEntry(H, 2, 10.0, "start failed", "command not found: nope", delay_s=2)
    assert report([want()], [], backoff={"w1": entry}) == {
        "w1": (
            "failed",
            H,
            "start failed (2 times in a row): command not found: nope; next attempt after 2 s",
        )
    }


def test_an_unhealthy_workload_carries_the_check_output() -> None:
    owned = [have(health="unhealthy", message="GET http://127.0.0.1:80/: HTTP 503")]
    assert report([want()], owned) == {
        "w1": ("unhealthy", H, "health check failing; GET http://127.0.0.1:80/: HTTP 503")
    }


def test_an_update_in_progress_reports_what_runs_and_where_it_goes() -> None:
    state, hash_, message = report([want(spec=NEW)], [have()])["w1"]
    assert (state, hash_) == ("running", H)
    assert message == f"updating from {H} to {H2}"


def test_an_undesired_workload_shows_until_removed() -> None:
    assert report([], [have("old")]) == {"old": ("running", H, "no longer desired; removing")}


def test_a_runtime_that_cannot_be_listed_explains_pending_workloads() -> None:
    spec = WorkloadSpec(runtime="docker", image="busybox")
    got = report([want(spec=spec)], [], unavailable={"docker": "daemon unavailable"})
    assert got == {
        "w1": ("pending", spec_hash(spec), "runtime docker unavailable: daemon unavailable")
    }


def test_a_workload_being_started_shows_its_progress() -> None:
    assert report([want()], [], progress={"w1": "pulling"}) == {"w1": ("pulling", H, "")}


def test_a_stopped_workload_says_so() -> None:
    owned = [have(state="failed", message="exited with code 3")]
    assert report([want()], owned) == {"w1": ("failed", H, "exited with code 3")}


def test_a_health_restart_note_is_hidden_once_running_again() -> None:
    entry = BackoffEntry(H, 1, 10.0, "restarted after failing health checks", "x", delay_s=1)
    assert report([want()], [have()], backoff={"w1": entry}) == {"w1": ("running", H, "")}
