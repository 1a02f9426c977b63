"""Per-gateway rollback: when a workload under a rollout guard goes back to its previous
spec, decided by the agent alone. Pure (STYLE.md §1): values in, values out.

Who calls it: the converger, at the start of each pass (after observing, before planning).
:func:`judge` watches every desired entry that carries a
:class:`~edgefleet_protocol.RolloutGuard`; :func:`effective` is the list the planner gets
(reverted entries swapped for their previous spec); :func:`next_deadline` tells the loop
when to look again, so a revert happens on time with no broker and no orchestrator.

The rules (docs/protocol.md, "Rollouts"):

* the clock starts when the agent first sees the guarded ``spec_hash`` (the pass that
  starts applying it);
* the spec *passes* once it has run healthy — ``running``, and ``healthy`` if the spec has
  a health check, else not ``unhealthy`` — for ``min_healthy_s`` (at least
  :data:`MIN_OBSERVED_S`) without a restart; a passed spec is never reverted;
* not passed ``healthy_deadline_s`` after the start → reverted: the previous spec runs
  while the desired entry still names the failed hash (also across agent restarts: the
  caller stores :class:`Reverted`); any other desired hash ends the revert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from edgefleet_protocol import DesiredWorkload, RolledBack, WorkloadSpec

from edgefleet_agent.core.planner import OwnedWorkload

MIN_OBSERVED_S = 1.0
"""A crash-looping process is ``running`` for a moment after each start; a spec passes only
after this long at least, even with ``min_healthy_s: 0``."""


@dataclass(frozen=True, slots=True)
class Watch:
    """One guarded workload on its way to ``spec_hash``."""

    spec_hash: str
    started_at: float
    healthy_since: float | None = None
    restarts: int = 0
    passed: bool = False


@dataclass(frozen=True, slots=True)
class Reverted:
    """The agent went back from ``spec_hash`` to ``previous_spec`` for ``reason``."""

    name: str
    spec_hash: str
    previous_spec: WorkloadSpec
    previous_hash: str
    reason: str
    at: float

    def report(self) -> RolledBack:
        return RolledBack(spec_hash=self.spec_hash, reason=self.reason, at=self.at)


@dataclass(frozen=True, slots=True)
class Guards:
    watches: Mapping[str, Watch] = field(default_factory=dict)
    reverted: Mapping[str, Reverted] = field(default_factory=dict)


def judge(
    desired: Sequence[DesiredWorkload],
    owned: Sequence[OwnedWorkload],
    guards: Guards,
    *,
    now: float,
) -> tuple[Guards, list[Reverted]]:
    """The guards after looking at ``owned`` now, and the reverts decided in this call."""
    watches: dict[str, Watch] = {}
    reverted: dict[str, Reverted] = {}
    new: list[Reverted] = []
    for d in desired:
        done = guards.reverted.get(d.name)
        if done is not None and done.spec_hash == d.spec_hash:
            reverted[d.name] = done
            continue
        guard = d.rollout
        if guard is None:
            continue
        watch = guards.watches.get(d.name)
        if watch is None or watch.spec_hash != d.spec_hash:
            watch = Watch(d.spec_hash, started_at=now)
        if not watch.passed:
            watch = _observe(watch, d, owned, guard.min_healthy_s, now)
        if not watch.passed and now - watch.started_at >= guard.healthy_deadline_s:
            reason = _why(d, owned, guard.min_healthy_s, guard.healthy_deadline_s)
            back = Reverted(d.name, d.spec_hash, guard.previous_spec, guard.previous_spec_hash,
                            reason, now)  # fmt: skip
            reverted[d.name] = back
            new.append(back)
            continue
        watches[d.name] = watch
    return Guards(watches, reverted), new


def effective(desired: Sequence[DesiredWorkload], guards: Guards) -> list[DesiredWorkload]:
    """What to converge to: reverted entries run their previous spec, unguarded."""
    out = []
    for d in desired:
        back = guards.reverted.get(d.name)
        if back is not None and back.spec_hash == d.spec_hash:
            d = DesiredWorkload(name=d.name, app=d.app, spec=back.previous_spec,
                                spec_hash=back.previous_hash)  # fmt: skip
        out.append(d)
    return out


def next_deadline(desired: Sequence[DesiredWorkload], guards: Guards) -> float | None:
    """The earliest moment a watched workload must be judged again, or ``None``."""
    times = []
    for d in desired:
        watch = guards.watches.get(d.name)
        if d.rollout is None or watch is None or watch.passed:
            continue
        times.append(watch.started_at + d.rollout.healthy_deadline_s)
        if watch.healthy_since is not None:
            times.append(watch.healthy_since + max(d.rollout.min_healthy_s, MIN_OBSERVED_S))
    return min(times) if times else None


def _current(d: DesiredWorkload, owned: Sequence[OwnedWorkload]) -> OwnedWorkload | None:
    return next((o for o in owned if o.name == d.name and o.spec_hash == d.spec_hash), None)


def _healthy(d: DesiredWorkload, o: OwnedWorkload | None) -> bool:
    if o is None or o.observed.state != "running":
        return False
    if d.spec.health is not None:
        return o.observed.health == "healthy"
    return o.observed.health != "unhealthy"


def _observe(
    watch: Watch, d: DesiredWorkload, owned: Sequence[OwnedWorkload], min_s: float, now: float
) -> Watch:
    o = _current(d, owned)
    if not _healthy(d, o):
        return replace(watch, healthy_since=None)
    assert o is not None
    if watch.healthy_since is None or o.observed.restarts != watch.restarts:
        return replace(watch, healthy_since=now, restarts=o.observed.restarts)
    if now - watch.healthy_since >= max(min_s, MIN_OBSERVED_S):
        return replace(watch, passed=True)
    return watch


def _why(
    d: DesiredWorkload, owned: Sequence[OwnedWorkload], min_s: float, deadline_s: float
) -> str:
    o = _current(d, owned)
    if o is None:
        seen = "it never ran"
    else:
        obs = o.observed
        seen = f"{obs.state}, health {obs.health}, {obs.restarts} restart(s)"
        if obs.message:
            seen += f": {obs.message}"
    return f"not healthy for {min_s:g}s within healthy_deadline_s {deadline_s:g}s ({seen})"
