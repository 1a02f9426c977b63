"""Which spec each replica runs while its app rolls out, for the reconcile pass. Pure.

:class:`RolloutSpecs` is the pass's :class:`~edgefleet_orchestrator.fleet.replicas.SpecCache`
with one rule added: while a rollout *splits* the app (every phase but ``reverting``,
``reverted`` and ``succeeded``), a replica the rollout released runs the new workload and
every other replica the previous one — except a replica whose make-before-break update
was undone (:meth:`RolloutState.keeps_old_copy`): it is back on its old copy, on the
previous workload. The old copy of a replica moving make-before-break runs the previous
workload too (:meth:`RolloutSpecs.previous`). With ``auto_revert`` each released replica's desired
entry also carries a :class:`~edgefleet_protocol.RolloutGuard` (the previous spec and the
deadline) until the rollout ends, so its agent can revert on its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgefleet_protocol import RolloutGuard, WorkloadSpec, spec_hash
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.replicas import SpecCache, SpecMemo, replica_spec
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.rollout.state import RolloutState


class RolloutSpecs(SpecCache):
    def __init__(
        self,
        apps: Mapping[str, AppManifest],
        rollouts: Mapping[str, RolloutState],
        memo: SpecMemo | None = None,
    ) -> None:
        super().__init__(apps, memo)
        self._apps_by_name = apps
        self._rollouts = {a: r for a, r in rollouts.items() if a in apps and r.splits}
        self._split: dict[tuple[str, str, float, int], tuple[WorkloadSpec, str]] = {}

    def spec_and_hash(self, a: Assignment) -> tuple[WorkloadSpec, str]:
        rollout = self._rollouts.get(a.app)
        if rollout is None:
            return super().spec_and_hash(a)
        new = rollout.runs_new(a.replica)
        return self._spec(a, rollout.to_workload if new else rollout.from_workload, new)

    def previous(self, a: Assignment) -> tuple[WorkloadSpec, str]:
        """The spec of a rollout's old copy on ``a.node``: the workload the rollout
        started from (outside a split, the app's own, which a revert restored)."""
        rollout = self._rollouts.get(a.app)
        if rollout is None:
            return super().spec_and_hash(a)
        return self._spec(a, rollout.from_workload, False)

    def guard_of(self, a: Assignment) -> RolloutGuard | None:
        """The revert guard for ``a``'s desired entry, or ``None``."""
        rollout = self._rollouts.get(a.app)
        if rollout is None or not rollout.runs_new(a.replica) or not rollout.active:
            return None
        update = self._apps_by_name[a.app].update_strategy
        if not update.auto_revert:
            return None
        previous, previous_hash = self._spec(a, rollout.from_workload, False)
        return RolloutGuard(
            revision=rollout.revision,
            previous_spec=previous,
            previous_spec_hash=previous_hash,
            healthy_deadline_s=update.healthy_deadline_s,
            min_healthy_s=update.min_healthy_s,
        )

    def _spec(self, a: Assignment, workload: WorkloadSpec, new: bool) -> tuple[WorkloadSpec, str]:
        key = (a.app, "new" if new else "old", a.cpu, a.memory_mb)
        found = self._split.get(key)
        if found is None:
            app = self._apps_by_name[a.app].model_copy(update={"workload": workload})
            spec = replica_spec(app, a.cpu, a.memory_mb)
            found = self._split[key] = (spec, spec_hash(spec))
        return found
