"""One converge pass: observe, plan, execute, absorb outcomes. Used by the agent's loop.

:class:`Converger` holds everything the passes share — the desired document in force, the
specs known by hash, live resource updates, per-workload backoff, the last observation —
and is the only caller of the executor, so two passes never race over one workload.

Invariants:

* ``desired`` is replaced only by :meth:`accept`, after the document was persisted (or
  the disk refused, which is reported); a pass reads it once at its start.
* A runtime that cannot be listed is *unavailable* for the pass: its workloads are neither
  started nor removed (it may be running them fine), and the last known view of them is
  kept for ``reported``.
* Failures become backoff entries per workload; a health restart paces the next one the
  same way, and the entry is dropped when the workload is healthy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, assert_never

from edgefleet_protocol import Desired, WorkloadReport, WorkloadSpec
from edgefleet_protocol.node_messages import Level, WorkloadState

from edgefleet_agent.core.backoff import BackoffEntry, BackoffPolicy, after_failure
from edgefleet_agent.core.pacing import failed_action, next_delay, target_hash
from edgefleet_agent.core.planner import OwnedWorkload, plan_steps
from edgefleet_agent.core.report import workload_reports
from edgefleet_agent.core.revert import Guards, Reverted, effective, judge, next_deadline
from edgefleet_agent.core.runtime import Observed, Runtime, WorkloadRef
from edgefleet_agent.core.steps import Prepare, Remove, Restart, Start, UpdateResources
from edgefleet_agent.service.executor import Executor, Outcome
from edgefleet_agent.service.health_watch import HealthWatch
from edgefleet_agent.service.metrics_inbox import METRICS_ENV
from edgefleet_agent.store import LocalStore

LIST_TIMEOUT_S = 30.0
METRICS_RUNTIMES = frozenset({"process", "simulated"})
PUBLISH_WAIT_S = 0.5

EventSink = Callable[..., Coroutine[Any, Any, None]]
"""``sink(level, kind, message, **details)``: publishes an event (or queues it)."""


class Converger:
    def __init__(
        self,
        *,
        runtimes: Mapping[str, Runtime],
        store: LocalStore,
        health: HealthWatch,
        events: EventSink,
        metrics_path: Callable[[str], str],
        reconcile_interval_s: float,
        clock: Callable[[], float] = time.time,
        policy: BackoffPolicy | None = None,
        service_env: Callable[[WorkloadSpec], dict[str, str]] | None = None,
    ) -> None:
        self.runtimes = runtimes
        self.store = store
        self.health = health
        self._events = events
        self._metrics_path = metrics_path
        self._service_env = service_env
        self._interval = reconcile_interval_s
        self._clock = clock
        self._policy = policy or BackoffPolicy()
        stored = store.load_desired()
        self.desired: Desired | None = stored.desired if stored else None
        self.accepted_at = stored.accepted_at if stored else clock()
        self.observed_generation = 0
        self.known_specs: dict[str, WorkloadSpec] = store.known_specs()
        self.aliases: dict[str, tuple[str, str]] = store.aliases()
        # Rollout guards: what is being watched, and what went back to its previous spec.
        self.guards = Guards(reverted=store.reverted())
        self._slots: dict[str, asyncio.Future[Any]] = {}
        self._waiting: dict[str, Coroutine[Any, Any, Any]] = {}  # per slot: the one next
        self._background: set[asyncio.Future[Any]] = set()
        self.backoff: dict[str, BackoffEntry] = {}
        self.progress: dict[str, WorkloadState] = {}
        self.owned: list[OwnedWorkload] = []
        self.unavailable: dict[str, str] = {}
        self._raw_hash: dict[str, str] = {}
        self._pending_alias: dict[str, str] = {}
        self._executor = Executor(runtimes, decorate=self._decorate)

    # -- desired --------------------------------------------------------------------------

    def accept(self, desired: Desired) -> str | None:
        """Persist and adopt ``desired``; returns the disk error, if the write failed."""
        now = self._clock()
        problem = None
        keep = {w.spec_hash for w in desired.workloads} | {o.spec_hash for o in self.owned}
        if self.desired is not None:
            keep |= {w.spec_hash for w in self.desired.workloads}
        try:
            with self.store.batch():  # the document and its specs: one write
                self.store.save_desired(desired, accepted_at=now)
                self.store.forget_specs_except(keep)
        except OSError as exc:
            # Still converge: the broker holds the document retained, and the next accepted
            # generation tries the disk again.
            problem = str(exc)
        specs = {**self.known_specs, **{w.spec_hash: w.spec for w in desired.workloads}}
        self.known_specs = {h: s for h, s in specs.items() if h in keep}
        self.desired, self.accepted_at = desired, now
        return problem

    def spec_for(self, name: str, spec_hash: str) -> WorkloadSpec | None:
        for w in self.desired.workloads if self.desired else []:
            if w.name == name and w.spec_hash == spec_hash:
                return w.spec
        return self.known_specs.get(spec_hash)

    def runtimes_of(self) -> dict[str, str]:
        """Each workload of the desired state in force and the runtime it runs on."""
        desired = self.desired
        return {w.name: w.spec.runtime for w in desired.workloads} if desired else {}

    def reports(self) -> dict[str, WorkloadReport]:
        desired = self.desired.workloads if self.desired else []
        reports = workload_reports(
            desired=effective(desired, self.guards),
            owned=self.owned,
            backoff=self.backoff,
            progress=self.progress,
            unavailable=self.unavailable,
            pending_since=self.accepted_at,
        )
        for name, back in self.guards.reverted.items():
            if name in reports:
                reports[name] = reports[name].model_copy(update={"rolled_back": back.report()})
        return reports

    # -- the pass -------------------------------------------------------------------------

    async def once(self, publish_progress: Callable[[], Coroutine[Any, Any, None]]) -> float:
        """One level-triggered pass; returns the seconds until the next one is needed."""
        now = self._clock()
        await self.observe()
        desired = self.desired
        reverted: list[Reverted] = []
        if desired is not None:
            reverted = self._guard(desired, now)
            usable = [o for o in self.owned if o.runtime not in self.unavailable]
            workloads = effective(desired.workloads, self.guards)
            wanted = [w for w in workloads if w.spec.runtime not in self.unavailable]
            steps = plan_steps(
                wanted, usable, now=now, backoff=self.backoff, known_specs=self.known_specs
            )
            if steps:
                for step in steps:
                    if isinstance(step, Prepare):
                        self.progress[step.name] = (
                            "pulling" if step.runtime == "docker" else "starting"
                        )
                await self.bounded(publish_progress(), slot="reported")
                try:
                    outcomes = await self._executor.run(steps)
                finally:
                    self.progress.clear()
                for outcome in outcomes:
                    await self._absorb(outcome, now)
                await self.observe()
            self.observed_generation = desired.generation
        for back in reverted:  # after the steps: an event may wait on a broker that is gone
            await self._event("warning", "rolled-back", f"{back.name}: back to "
                              f"{back.previous_hash}: {back.reason}", workload=back.name,
                              spec_hash=back.spec_hash)  # fmt: skip
        delay = next_delay(self.owned, self.backoff, interval=self._interval, now=self._clock())
        due = next_deadline(desired.workloads, self.guards) if desired is not None else None
        if due is not None:
            delay = max(0.05, min(delay, due - self._clock()))
        return delay

    def _guard(self, desired: Desired, now: float) -> list[Reverted]:
        """Judge the rollout guards before planning (core/revert.py): a spec not healthy
        by its deadline goes back to the previous one here, with or without a broker.
        Nothing here waits on the broker; the caller reports the reverts after the steps."""
        before = self.guards.reverted
        self.guards, new = judge(desired.workloads, self.owned, self.guards, now=now)
        for back in new:
            self.backoff.pop(back.name, None)  # its failures were the new spec's
            self.health.forget(back.name)
        if self.guards.reverted != before:
            with contextlib.suppress(OSError):
                self.store.save_reverted(self.guards.reverted.values())
        return new

    async def bounded(self, work: Coroutine[Any, Any, Any], *, slot: str | None = None) -> None:
        """Wait for ``work`` (a publish) at most :data:`PUBLISH_WAIT_S`; it goes on in the
        background. A QoS 1 publish into a broker that just went away can wait 10 s for its
        acknowledgement, and the converge loop (a guard's revert above all) must not wait
        with it. With a ``slot``, one at a time, never older after newer: while the last
        one of that slot is still out, ``work`` waits for it and goes next, replacing any
        other waiting one (a publish of the reported state reads the state when it starts,
        so the one that goes last carries the latest). Dropping it instead left a node that
        had converged reporting ``starting`` until its next change: with 500 simulated
        agents in one busy process, the progress publish was often still unacknowledged
        when the final one came, and convergence took 8 s at p50 instead of well under 1 s.
        """
        pending = self._slots.get(slot) if slot is not None else None
        if slot is not None and pending is not None and not pending.done():
            replaced = self._waiting.pop(slot, None)
            if replaced is not None:
                replaced.close()
            self._waiting[slot] = work
            return
        task = self._start(work, slot)
        await asyncio.wait({task}, timeout=PUBLISH_WAIT_S)

    def _start(self, work: Coroutine[Any, Any, Any], slot: str | None) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        if slot is not None:
            self._slots[slot] = task
            task.add_done_callback(lambda done: self._next_in(slot, done))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _next_in(self, slot: str, done: asyncio.Future[Any]) -> None:
        """The slot's publish is done (or failed): the one waiting goes. After a
        cancellation (the agent is stopping) the waiting one is dropped."""
        work = self._waiting.pop(slot, None)
        if work is None:
            return
        if done.cancelled():
            work.close()
            return
        self._start(work, slot)

    async def observe(self) -> None:
        owned: list[OwnedWorkload] = []
        unavailable: dict[str, str] = {}
        previous_raw, self._raw_hash = self._raw_hash, {}
        for name, runtime in self.runtimes.items():
            try:
                async with asyncio.timeout(LIST_TIMEOUT_S):
                    observed = await runtime.list_owned()
            except Exception as exc:
                unavailable[name] = getattr(exc, "message", None) or str(exc) or repr(exc)
                kept = [o for o in self.owned if o.runtime == name]
                owned.extend(kept)
                self._raw_hash.update({o.name: previous_raw.get(o.name, "") for o in kept})
                continue
            owned.extend(OwnedWorkload(name, self._effective(obs)) for obs in observed)
        self.owned, self.unavailable = owned, unavailable
        stale = [n for n, (src, _) in self.aliases.items() if self._raw_hash.get(n) != src]
        for name in stale:
            del self.aliases[name]
        if stale:
            with contextlib.suppress(OSError):
                self.store.drop_aliases(stale)

    def _effective(self, obs: Observed) -> Observed:
        """The runtime's view plus the agent's knowledge: live resource updates (the
        effective spec hash) and the agent's own health verdict."""
        self._raw_hash[obs.name] = obs.spec_hash
        pending = self._pending_alias.pop(obs.name, None)
        if pending is not None:
            self.aliases[obs.name] = (obs.spec_hash, pending)
            with contextlib.suppress(OSError):
                self.store.set_alias(obs.name, from_hash=obs.spec_hash, to_hash=pending)
        alias = self.aliases.get(obs.name)
        if alias is not None and obs.spec_hash == alias[0]:
            obs = replace(obs, spec_hash=alias[1])
        return self.health.overlay(obs)

    async def _absorb(self, outcome: Outcome, now: float) -> None:
        step, name = outcome.step, outcome.name
        if not outcome.ok:
            entry = after_failure(
                self.backoff.get(name),
                spec_hash=target_hash(step, self.desired),
                action=failed_action(step),
                message=outcome.message,
                permanent=outcome.permanent,
                now=now,
                policy=self._policy,
            )
            self.backoff[name] = entry
            await self._event("warning", "workload-failed", f"{name}: {entry.describe()}",
                              workload=name, step=type(step).__name__,
                              permanent=outcome.permanent)  # fmt: skip
            return
        match step:
            case Start() | Remove():
                self.backoff.pop(name, None)
                self.health.forget(name)
            case Restart(spec_hash=spec_hash, reason=reason):
                # A health restart paces the next one as a failure would.
                self.backoff[name] = after_failure(
                    self.backoff.get(name),
                    spec_hash=spec_hash,
                    action="restarted after failing health checks",
                    message=reason,
                    permanent=False,
                    now=now,
                    policy=self._policy,
                )
                self.health.forget(name)
                await self._event("warning", "workload-restarted", f"{name}: {reason}",
                                  workload=name)  # fmt: skip
            case UpdateResources(to_hash=to_hash):
                # Whatever hash the runtime shows from now on (unchanged label, recomputed
                # from its stored spec, or the desired one) means ``to_hash``: the next
                # observation, right after this pass's steps, pins the alias.
                self._pending_alias[name] = to_hash
                update = outcome.resource_update
                if update is not None and not update.applied:
                    await self._event("warning", "resources-not-enforced",
                                      f"{name}: {update.message}", workload=name)  # fmt: skip
            case Prepare():
                pass
            case _:
                assert_never(step)

    def healthy_again(self, name: str) -> None:
        """A workload passed its checks again: its health-restart pacing is over."""
        entry = self.backoff.get(name)
        if entry is not None and entry.action.startswith("restarted"):
            del self.backoff[name]

    async def _event(self, level: Level, kind: str, message: str, **details: Any) -> None:
        await self.bounded(self._events(level, kind, message, **details))

    def _decorate(self, runtime: str, ref: WorkloadRef) -> WorkloadRef:
        """Add the agent's environment (the metrics file, the service proxies) to what a
        runtime starts; the spec hash stays the desired one, so the workload still matches
        its spec. May raise ``TransientRuntimeError`` (a used service not known yet)."""
        extra = self._service_env(ref.spec) if self._service_env is not None else {}
        if runtime in METRICS_RUNTIMES:
            extra[METRICS_ENV] = self._metrics_path(ref.name)
        if not extra:
            return ref
        env = {**ref.spec.env, **extra}
        return replace(ref, spec=ref.spec.model_copy(update={"env": env}))
