"""The agent's small pure rules: hello on a new orchestrator, events for admission verdicts,
and the converge pass's pacing. Each was inside the agent's I/O shell before; here they are
pinned as tables."""

from __future__ import annotations

import pytest
from edgefleet_agent.core.admission import Accept, Reject, Stale, Unchanged, notice_for
from edgefleet_agent.core.backoff import BackoffEntry
from edgefleet_agent.core.pacing import (
    MIN_DELAY_S,
    QUICK_RECHECK_S,
    failed_action,
    next_delay,
    target_hash,
)
from edgefleet_agent.core.planner import OwnedWorkload
from edgefleet_agent.core.presence import hello_due
from edgefleet_agent.core.runtime import Observed
from edgefleet_agent.core.steps import Remove
from edgefleet_protocol import Desired, OrchestratorStatus


def status(state: str = "online", since: float = 10.0) -> OrchestratorStatus:
    return OrchestratorStatus.model_validate({"v": 1, "state": state, "since": since})


@pytest.mark.parametrize(
    ("state", "since", "seen", "busy", "due", "remembered"),
    [
        ("online", 10.0, None, False, False, 10.0),  # first sight: the connect republished
        ("online", 10.0, 10.0, False, False, 10.0),  # replayed online, same since: nothing
        ("online", 20.0, 10.0, False, True, 20.0),  # a new orchestrator: hello
        ("online", 20.0, 10.0, True, False, 20.0),  # a hello already under way
        ("offline", 20.0, 10.0, False, False, 10.0),  # offline never triggers a hello
    ],
)
def test_hello_is_due_only_for_a_new_orchestrator_online(
    state: str, since: float, seen: float | None, busy: bool, due: bool, remembered: float
) -> None:
    assert hello_due(status(state, since), seen, busy=busy) == (due, remembered)


def desired(generation: int = 3) -> Desired:
    return Desired.model_validate(
        {
            "v": 1,
            "node": "n1",
            "generation": generation,
            "issued_at": 1.0,
            "workloads": [
                {
                    "name": "w1",
                    "app": "a",
                    "spec_hash": "sha256:want",
                    "spec": {"runtime": "process", "command": ["true"]},
                }
            ],
        }
    )


def test_each_verdict_raises_its_documented_event() -> None:
    rejected = notice_for(Reject(field="node", reason="is for another node"))
    assert rejected is not None
    assert (rejected.level, rejected.kind) == ("warning", "desired-rejected")
    assert rejected.details == {"field": "node", "reason": "is for another node"}
    assert "node: is for another node" in rejected.message

    stale = notice_for(Stale(generation=2, current=5))
    assert stale is not None
    assert (stale.level, stale.kind, stale.details) == (
        "warning",
        "desired-stale",
        {"generation": 2, "current": 5},
    )

    accepted = notice_for(Accept(desired=desired(7)))
    assert accepted is not None
    assert (accepted.kind, accepted.details) == ("desired-accepted", {"generation": 7})
    assert "1 workload(s)" in accepted.message

    assert notice_for(Unchanged(generation=7)) is None


def owned(state: str) -> OwnedWorkload:
    obs = Observed(name="w1", app="a", spec_hash="sha256:x", state=state, runtime_id="1")  # type: ignore[arg-type]
    return OwnedWorkload(runtime="process", observed=obs)


def entry(due_at: float) -> BackoffEntry:
    return BackoffEntry(
        spec_hash="sha256:x", failures=1, next_attempt_at=due_at, action="start failed", message=""
    )


@pytest.mark.parametrize(
    ("states", "due_at", "expected"),
    [
        (["running"], None, 10.0),  # steady: the reconcile interval
        (["starting"], None, QUICK_RECHECK_S),  # in transition: look again soon
        (["running"], 103.0, 3.0),  # a backoff comes due first
        (["running"], 100.01, MIN_DELAY_S),  # due in 10 ms: soon, but never a busy loop
        (["running"], 99.0, 10.0),  # already due: this pass retried it, no extra wake
    ],
)
def test_next_pass_comes_at_the_earliest_reason(
    states: list[str], due_at: float | None, expected: float
) -> None:
    backoff = {} if due_at is None else {"w1": entry(due_at)}
    got = next_delay([owned(s) for s in states], backoff, now=100.0, interval=10.0)
    assert got == pytest.approx(expected)


def test_a_failure_backs_off_the_spec_it_was_heading_for() -> None:
    step = Remove(runtime="process", name="w1", spec_hash="sha256:old", reason="replaced")
    assert target_hash(step, desired()) == "sha256:want"
    assert target_hash(step, None) == "sha256:old"
    assert failed_action(step) == "remove failed"
