"""Step planning: the pure heart of the agent (STYLE.md §1, §7).

``plan_steps(desired, owned, now=..., backoff=..., known_specs=...)`` compares the desired
workloads with what the runtimes own and returns the steps that converge one to the other.
No I/O, no clock, no randomness: the same inputs always give the same steps, so the tests
are tables.

The rules, in the order they matter:

* A workload whose running spec hash equals the desired one is **never touched**, unless
  its health is ``unhealthy`` (then a :class:`~edgefleet_agent.core.steps.Restart`).
* Only resources changed (equal identity hash of the running and the desired spec) →
  :class:`~edgefleet_agent.core.steps.UpdateResources`, never a restart.
* Anything else changed → Prepare the new one first (pull while the old one still serves),
  then Remove the old one, then Start the new one.
* Owned workloads that are not desired (or live in a runtime the spec no longer names) are
  removed; those removals come first, so they free ports and memory for the rest.
* A workload with a pending backoff entry gets no steps now: for a desired workload the
  entry is keyed by the *desired* hash (whatever step failed on the way to it), for an
  undesired one by its running hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgefleet_protocol import DesiredWorkload, WorkloadSpec, identity_hash

from edgefleet_agent.core.backoff import BackoffEntry
from edgefleet_agent.core.runtime import Observed, WorkloadRef
from edgefleet_agent.core.steps import Prepare, Remove, Restart, Start, Step, UpdateResources

RESTARTABLE_STATES = frozenset({"running", "unhealthy"})
DEFAULT_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class OwnedWorkload:
    """One workload a runtime owns, as the planner sees it.

    ``observed.spec_hash`` is the *effective* hash: the agent rewrites it after a live
    resource update (runtimes cannot relabel a running container), and ``observed.health``
    carries the agent's own probe verdict when the spec has a health check.
    """

    runtime: str
    observed: Observed

    @property
    def name(self) -> str:
        return self.observed.name

    @property
    def spec_hash(self) -> str:
        return self.observed.spec_hash


def _blocked(backoff: Mapping[str, BackoffEntry], name: str, spec_hash: str, now: float) -> bool:
    entry = backoff.get(name)
    return entry is not None and entry.blocks(spec_hash, now)


def plan_steps(
    desired: Sequence[DesiredWorkload],
    owned: Sequence[OwnedWorkload],
    *,
    now: float,
    backoff: Mapping[str, BackoffEntry],
    known_specs: Mapping[str, WorkloadSpec],
) -> list[Step]:
    """The steps that take ``owned`` to ``desired``; empty when nothing needs doing.

    ``known_specs`` maps spec hashes the agent has applied before to their specs, so a
    running workload's identity can be compared with the desired one.
    """
    wanted = {d.name for d in desired}
    removals: list[Step] = [
        _remove(o, "no longer desired", known_specs)
        for o in owned
        if o.name not in wanted and not _blocked(backoff, o.name, o.spec_hash, now)
    ]
    changes: list[Step] = []
    for d in desired:
        if _blocked(backoff, d.name, d.spec_hash, now):
            continue  # every failure on the way to this spec backs off the whole workload
        mine = [o for o in owned if o.name == d.name]
        runtime = d.spec.runtime
        for stray in mine:
            if stray.runtime != runtime:
                reason = f"runtime changed from {stray.runtime} to {runtime}"
                removals.append(_remove(stray, reason, known_specs))
        current = next((o for o in mine if o.runtime == runtime), None)
        changes.extend(_converge_one(d, current, known_specs))
    return removals + changes


def _converge_one(
    d: DesiredWorkload, current: OwnedWorkload | None, known_specs: Mapping[str, WorkloadSpec]
) -> list[Step]:
    runtime = d.spec.runtime
    ref = WorkloadRef(name=d.name, app=d.app, spec=d.spec, spec_hash=d.spec_hash)
    if current is None:
        return [Prepare(runtime, ref), Start(runtime, ref)]
    if current.spec_hash == d.spec_hash:
        obs = current.observed
        if obs.health == "unhealthy" and obs.state in RESTARTABLE_STATES:
            reason = f"health check failing: {obs.message}" if obs.message else "unhealthy"
            return [Restart(runtime, d.name, d.spec_hash, reason=reason)]
        return []
    old_spec = known_specs.get(current.spec_hash)
    if old_spec is not None and identity_hash(old_spec) == identity_hash(d.spec):
        return [
            UpdateResources(
                runtime, d.name, d.spec.resources, from_hash=current.spec_hash, to_hash=d.spec_hash
            )
        ]
    reason = f"spec changed from {current.spec_hash} to {d.spec_hash}"
    return [
        Prepare(runtime, ref, reason=reason),
        _remove(current, reason, known_specs),
        Start(runtime, ref, reason=reason),
    ]


def _remove(o: OwnedWorkload, reason: str, known_specs: Mapping[str, WorkloadSpec]) -> Remove:
    """A removal that honours the *running* spec's stop timeout when the agent knows it."""
    spec = known_specs.get(o.spec_hash)
    timeout = spec.stop_timeout_s if spec is not None else DEFAULT_STOP_TIMEOUT_S
    return Remove(o.runtime, o.name, o.spec_hash, reason=reason, timeout_s=timeout)
