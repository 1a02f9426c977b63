"""How a converge pass paces itself: which spec a failure backs off, and when to look again.

Pure decisions for :class:`~edgefleet_agent.service.converge.Converger`: a failed step backs
off the spec it was heading for (so a new desired spec is tried at once), and the next pass
comes after the reconcile interval, sooner while a workload is in transition or a backoff
comes due, never sooner than 50 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import assert_never

from edgefleet_protocol import Desired

from edgefleet_agent.core.backoff import BackoffEntry, next_due
from edgefleet_agent.core.planner import OwnedWorkload
from edgefleet_agent.core.steps import Prepare, Remove, Restart, Start, Step, UpdateResources

TRANSITIONAL = frozenset({"pending", "pulling", "starting"})
QUICK_RECHECK_S = 1.0
MIN_DELAY_S = 0.05
VERBS = {Prepare: "prepare", Start: "start", Remove: "remove", Restart: "restart",
         UpdateResources: "resource update"}  # fmt: skip


def target_hash(step: Step, desired: Desired | None) -> str:
    """Failures on the way to a desired spec back off that spec; others their own."""
    for w in desired.workloads if desired else []:
        if w.name == step.name:
            return w.spec_hash
    match step:
        case Prepare(ref=ref) | Start(ref=ref):
            return ref.spec_hash
        case Remove(spec_hash=spec_hash) | Restart(spec_hash=spec_hash):
            return spec_hash
        case UpdateResources(to_hash=to_hash):
            return to_hash
        case _:
            assert_never(step)


def failed_action(step: Step) -> str:
    """What failed, as the backoff entry and the event name it ("pull failed")."""
    verb = "pull" if isinstance(step, Prepare) and step.runtime == "docker" else VERBS[type(step)]
    return f"{verb} failed"


def next_delay(
    owned: Iterable[OwnedWorkload],
    backoff: Mapping[str, BackoffEntry],
    *,
    now: float,
    interval: float,
) -> float:
    """Seconds until the next pass."""
    delay = interval
    if any(o.observed.state in TRANSITIONAL for o in owned):
        delay = min(delay, QUICK_RECHECK_S)
    due = next_due(backoff, now)
    if due is not None:
        delay = min(delay, due - now)
    return max(MIN_DELAY_S, delay)
