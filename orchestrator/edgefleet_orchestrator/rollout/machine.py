"""The rollout state machine: ``step(state, view, now) -> (state, notes)``. Pure.

Called by the pass runner before each reconcile pass for every app whose rollout is
active, with a :class:`RolloutView` of the app's replicas as their agents report them. The
returned state says which replicas get the new spec (``released``); :mod:`.specs` turns
that into desired entries. Notes are lines for the audit trail.

One step, in order:

1. judge each released replica: rolled back by its agent, restarted
   :data:`CRASH_RESTARTS` times on the new spec, or not healthy by ``healthy_deadline_s``
   (plus :data:`AGENT_GRACE_S`, so an agent's own revert is seen
   first) → failed; healthy on the new spec for ``min_healthy_s`` without a restart → done;
2. abort when more than ``max_failed`` failed, or nothing became healthy for
   ``progress_deadline_s``: ``reverting`` with ``auto_revert``, else ``failed``;
3. ``reverting`` ends (``reverted``) when no online replica reports the new spec;
4. ``canary``: release the canary; all done → ``progressing`` (``auto_promote``) or
   ``awaiting-promotion``;
5. ``progressing``: a wave is finished when each of its replicas is done or failed; the
   next starts ``wave_pause_s`` later; within a wave at most ``max_parallel`` replicas are
   in flight (released, not yet done or failed); all finished → ``succeeded``.

``paused`` and ``awaiting-promotion`` judge (1-3) but release nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from edgefleet_protocol.manifest import Update, share_of
from edgefleet_protocol.rollout import RolloutPhase

from edgefleet_orchestrator.rollout.state import Healthy, RolloutState

AGENT_GRACE_S = 2.0
"""The orchestrator's deadline trails the agent's by this much: an agent that reverts on its
own reports ``rolled_back`` (with its reason) before the orchestrator gives up on it."""

SINGLE_WAVE = "all"

MIN_OBSERVED_S = 1.0
"""A replica counts as healthy only after this long at least, even with ``min_healthy_s:
0``: a crash-looping process is ``running`` for a moment after each start."""

CRASH_RESTARTS = 3
"""A released replica whose agent reports this many restarts on the new spec has failed at
once (a crash loop), without waiting for ``healthy_deadline_s``."""


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One replica of the app as the step sees it. ``group`` is its wave key (site or
    region, by ``update.waves``); ``on_target`` whether its online agent reports the new
    spec; ``healthy`` whether that report is running and passing its checks;
    ``rolled_back`` the agent's reason when it reverted from the new spec."""

    replica: str
    node: str
    group: str
    on_target: bool = False
    healthy: bool = False
    restarts: int = 0
    rolled_back: str | None = None


@dataclass(frozen=True, slots=True)
class RolloutView:
    replicas: Sequence[ReplicaView]
    update: Update


def step(state: RolloutState, view: RolloutView, now: float) -> tuple[RolloutState, list[str]]:
    """One step (see the module docstring). A finished rollout is returned unchanged."""
    if not state.active:
        return state, []
    notes: list[str] = []
    s = _plan_waves(state, view)
    s = _judge(s, view, now, notes)
    if s.phase == "reverting":
        if not any(r.on_target for r in view.replicas):
            s = _enter(s, "reverted", now, f"reverted to revision {s.from_revision}", notes)
        return _touch(s, state, now), notes
    s = _abort_if_due(s, view, now, notes)
    if s.phase == "canary":
        s = _canary(s, view, now, notes)
    if s.phase == "progressing":
        s = _progress(s, view, now, notes)
    return _touch(s, state, now), notes


def revert(state: RolloutState, reason: str, now: float) -> RolloutState:
    """Send every replica back to the start spec (``undo``, or an abort with auto_revert)."""
    return _enter(replace(state, released={}), "reverting", now, reason, [])


def _touch(s: RolloutState, before: RolloutState, now: float) -> RolloutState:
    return s if s == before else replace(s, updated_at=now)


def _enter(
    s: RolloutState, phase: RolloutPhase, now: float, reason: str, notes: list[str]
) -> RolloutState:
    notes.append(f"rollout of {s.app} revision {s.revision}: {phase}: {reason}")
    # Entering a phase counts as progress: a promotion after a long wait must not find
    # progress_deadline_s already spent.
    return replace(s, phase=phase, phase_since=now, last_progress_at=now).with_reason(reason, now)


def set_phase(s: RolloutState, phase: RolloutPhase, reason: str, now: float) -> RolloutState:
    """An operator's promote, pause or resume (the command handler checks it is allowed)."""
    paused_from = s.phase if phase == "paused" else None
    return replace(_enter(s, phase, now, reason, []), paused_from=paused_from)


def _plan_waves(s: RolloutState, view: RolloutView) -> RolloutState:
    """Fix the wave order and the canary on the first step (the replicas known then)."""
    if s.wave_order:
        return s
    if view.update.waves == "none":
        order: tuple[str, ...] = (SINGLE_WAVE,)
    else:
        order = tuple(sorted({r.group for r in view.replicas})) or (SINGLE_WAVE,)
    s = replace(s, wave_order=order)
    if s.phase == "canary":
        count = share_of(view.update.canary, len(view.replicas), least=1)
        ranked = _ranked(s, view.replicas, order)
        s = replace(s, canary=tuple(r.replica for r in ranked[:count]))
    return s


def _ranked(
    s: RolloutState, replicas: Sequence[ReplicaView], order: tuple[str, ...]
) -> list[ReplicaView]:
    """Release order: what a superseded rollout moved first, then wave by wave, by name."""
    first = set(s.first)
    return sorted(replicas, key=lambda r: (r.replica not in first, _wave_of(r, order), r.replica))


def _wave_of(r: ReplicaView, order: tuple[str, ...]) -> int:
    # A replica in a group that appeared after the start joins the last wave.
    return order.index(r.group) if r.group in order else len(order) - 1


def _judge(s: RolloutState, view: RolloutView, now: float, notes: list[str]) -> RolloutState:
    upd = view.update
    healthy = dict(s.healthy)
    done, failed = set(s.done), dict(s.failed)
    progressed = False
    for r in view.replicas:
        at = s.released.get(r.replica)
        if at is None or r.replica in failed:
            continue
        if r.rolled_back is not None:
            failed[r.replica] = f"{r.node}: agent rolled back: {r.rolled_back}"
            notes.append(f"rollout of {s.app}: {r.replica} failed: {failed[r.replica]}")
            continue
        if r.replica in done:
            continue
        if r.on_target and r.restarts >= CRASH_RESTARTS:
            failed[r.replica] = f"{r.node}: crash-looping ({r.restarts} restarts on the new spec)"
            notes.append(f"rollout of {s.app}: {r.replica} failed: {failed[r.replica]}")
            continue
        seen = healthy.get(r.replica)
        if r.on_target and r.healthy:
            if seen is None or seen.restarts != r.restarts:
                seen = healthy[r.replica] = Healthy(now, r.restarts)
            if now - seen.since >= max(upd.min_healthy_s, MIN_OBSERVED_S):
                done.add(r.replica)
                progressed = True
                continue
        else:
            healthy.pop(r.replica, None)
        if now - at > upd.healthy_deadline_s + AGENT_GRACE_S:
            failed[r.replica] = (
                f"{r.node}: not healthy for {upd.min_healthy_s:g}s within "
                f"healthy_deadline_s {upd.healthy_deadline_s:g}s"
            )
            notes.append(f"rollout of {s.app}: {r.replica} failed: {failed[r.replica]}")
    return replace(
        s,
        healthy=healthy,
        done=frozenset(done),
        failed=failed,
        last_progress_at=now if progressed else s.last_progress_at,
    )


def _abort_if_due(s: RolloutState, view: RolloutView, now: float, notes: list[str]) -> RolloutState:
    upd = view.update
    allowed = share_of(upd.max_failed, len(view.replicas), least=0)
    reason = None
    if len(s.failed) > allowed:
        names = ", ".join(sorted(s.failed))
        reason = f"{len(s.failed)} replica(s) failed ({names}); max_failed allows {allowed}"
    elif s.phase in ("canary", "progressing") and (
        now - s.last_progress_at > upd.progress_deadline_s
    ):
        reason = f"no replica became healthy for progress_deadline_s {upd.progress_deadline_s:g}s"
    if reason is None:
        return s
    if upd.auto_revert:
        notes.append(f"rollout of {s.app} revision {s.revision}: aborting: {reason}")
        return revert(s.with_reason(reason, now), "auto_revert", now)
    return _enter(s, "failed", now, reason, notes)


def _canary(s: RolloutState, view: RolloutView, now: float, notes: list[str]) -> RolloutState:
    existing = {r.replica for r in view.replicas}
    canary = [c for c in s.canary if c in existing]
    released = dict(s.released)
    for name in canary:
        released.setdefault(name, now)
    s = replace(s, released=released)
    if all(c in s.done for c in canary):
        if view.update.auto_promote:
            return _enter(s, "progressing", now, "canary healthy; promoted automatically", notes)
        return _enter(s, "awaiting-promotion", now, "canary healthy; waiting for promote", notes)
    return s


def _progress(s: RolloutState, view: RolloutView, now: float, notes: list[str]) -> RolloutState:
    upd = view.update
    finished = s.done | set(s.failed)
    while True:
        members = [r for r in view.replicas if _wave_of(r, s.wave_order) == s.wave]
        if not all(r.replica in finished for r in members):
            break
        if s.wave + 1 >= len(s.wave_order):
            if all(r.replica in finished for r in view.replicas):
                return _enter(s, "succeeded", now, f"all {len(view.replicas)} replicas", notes)
            break
        done_at = s.wave_done_at if s.wave_done_at is not None else now
        if now - done_at < upd.wave_pause_s:
            return replace(s, wave_done_at=done_at)
        nxt = s.wave_order[s.wave + 1]
        notes.append(f"rollout of {s.app}: wave {s.wave_order[s.wave]} healthy; starting {nxt}")
        s = replace(s, wave=s.wave + 1, wave_done_at=None)
    existing = {r.replica for r in view.replicas}
    in_flight = [r for r in s.released if r in existing and r not in finished]
    budget = share_of(upd.max_parallel, len(view.replicas), least=1) - len(in_flight)
    if budget <= 0:
        return s
    released = dict(s.released)
    for r in _ranked(s, view.replicas, s.wave_order):
        if budget <= 0:
            break
        if r.replica in released:
            continue
        if _wave_of(r, s.wave_order) > s.wave and r.replica not in s.first:
            continue
        released[r.replica] = now
        budget -= 1
    return replace(s, released=released)
