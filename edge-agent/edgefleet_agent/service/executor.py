"""Runs planned steps against the runtimes: the thin shell around :mod:`planner`.

Steps are grouped per workload and each group runs in order, stopping at its first
failure (a failed Prepare must not be followed by removing the old workload). Groups run
concurrently up to a small limit. Every failure becomes an :class:`Outcome` for that
workload alone — runtime errors keep their transient/permanent kind, timeouts and
unexpected exceptions count as transient — so one broken workload never stops the others
(STYLE.md §12). Only cancellation (the agent stopping) propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never

from edgefleet_agent.core.runtime import (
    Observed,
    PermanentRuntimeError,
    ResourceUpdate,
    Runtime,
    RuntimeError_,
    WorkloadRef,
)
from edgefleet_agent.core.steps import (
    Prepare,
    Remove,
    Restart,
    Start,
    Step,
    UpdateResources,
    describe,
)

log = logging.getLogger("edgefleet.agent.executor")

Decorate = Callable[[str, WorkloadRef], WorkloadRef]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one step achieved. ``message`` explains a failure in operator words."""

    step: Step
    ok: bool
    message: str = ""
    permanent: bool = False
    observed: Observed | None = None
    resource_update: ResourceUpdate | None = None

    @property
    def name(self) -> str:
        return self.step.name


@dataclass(frozen=True, slots=True)
class Timeouts:
    prepare_s: float = 900.0
    """Pulls over a slow uplink take long; the Docker runtime has its own, shorter one."""
    other_s: float = 120.0


def _identity(runtime: str, ref: WorkloadRef) -> WorkloadRef:
    return ref


class Executor:
    def __init__(
        self,
        runtimes: Mapping[str, Runtime],
        *,
        decorate: Decorate = _identity,
        concurrency: int = 4,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._runtimes = runtimes
        self._decorate = decorate
        self._limit = asyncio.Semaphore(concurrency)
        self._timeouts = timeouts or Timeouts()

    async def run(self, steps: Sequence[Step]) -> list[Outcome]:
        """Run ``steps``; one outcome per step that ran (skipped steps have none)."""
        groups: dict[str, list[Step]] = {}
        for step in steps:
            groups.setdefault(step.name, []).append(step)
        results = await asyncio.gather(*(self._run_group(group) for group in groups.values()))
        return [outcome for group in results for outcome in group]

    async def _run_group(self, group: list[Step]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        async with self._limit:
            for step in group:
                outcome = await self._attempt(step)
                outcomes.append(outcome)
                if not outcome.ok:
                    log.warning("%s failed: %s", describe(step), outcome.message)
                    break
                log.info("%s done", describe(step))
        return outcomes

    async def _attempt(self, step: Step) -> Outcome:
        runtime = self._runtimes.get(step.runtime)
        if runtime is None:
            return Outcome(
                step,
                ok=False,
                message=f"runtime {step.runtime} is not enabled on this agent",
                permanent=True,
            )
        limit = self._timeouts.prepare_s if isinstance(step, Prepare) else self._timeouts.other_s
        try:
            async with asyncio.timeout(limit):
                return await self._execute(runtime, step)
        except RuntimeError_ as exc:
            return Outcome(
                step,
                ok=False,
                message=exc.message,
                permanent=isinstance(exc, PermanentRuntimeError),
            )
        except TimeoutError:
            return Outcome(step, ok=False, message=f"timed out after {limit:g} s")
        except Exception as exc:  # a runtime bug must not stop the other workloads
            log.exception("%s raised unexpectedly", describe(step))
            return Outcome(step, ok=False, message=f"unexpected error: {exc!r}")

    async def _execute(self, runtime: Runtime, step: Step) -> Outcome:
        match step:
            case Prepare(ref=ref):
                await runtime.prepare(self._decorate(step.runtime, ref))
                return Outcome(step, ok=True)
            case Start(ref=ref):
                observed = await runtime.start(self._decorate(step.runtime, ref))
                return Outcome(step, ok=True, observed=observed)
            case Remove(name=name, timeout_s=timeout_s):
                await runtime.remove(name, timeout_s=timeout_s)
                return Outcome(step, ok=True)
            case Restart(name=name):
                await runtime.restart(name)
                return Outcome(step, ok=True)
            case UpdateResources(name=name, resources=resources):
                update = await runtime.update_resources(name, resources)
                return Outcome(step, ok=True, message=update.message, resource_update=update)
            case _:
                assert_never(step)
