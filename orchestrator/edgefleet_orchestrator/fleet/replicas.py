"""Per-replica facts shared by the reconcile pass, app status and the scaling planners:
the spec a replica runs (its app's workload with the replica's own limits) and whether
its node says it runs.

Pure. Why per replica: with ``resources.auto`` the orchestrator sizes each replica on its
own, so two replicas of one app can run different limits — and so different spec hashes.
For an app with fixed limits every replica's spec is the manifest's workload unchanged, so
its hash is exactly what it was before sizing existed (no restart on upgrade).
"""

from __future__ import annotations

from collections.abc import Mapping

from edgefleet_protocol import Resources, WorkloadSpec, spec_hash
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.placement.model import Assignment


def replica_spec(app: AppManifest, cpu: float, memory_mb: int) -> WorkloadSpec:
    """The spec one replica runs: the app's workload with these limits and without
    ``auto`` (agents apply limits; choosing them is the orchestrator's job)."""
    resources = app.workload.resources
    if resources.auto is None and resources.cpu == cpu and resources.memory_mb == memory_mb:
        return app.workload
    return app.workload.model_copy(update={"resources": Resources(cpu=cpu, memory_mb=memory_mb)})


class SpecMemo:
    """Replica specs and their hashes across passes, kept by the shell (one per service).

    Why: every pass hashed every app's spec again (a canonical JSON dump and a SHA-256 per
    app and limits), though manifests rarely change: at 1,000 apps that was the largest
    part of a pass with nothing changed. Keyed by the manifest's workload *object* and the
    limits: a changed manifest is a new object (manifests are replaced, never mutated), so
    it can never be answered with an old hash. Entries that no pass asked for in the last
    two passes are dropped, so deleted apps and old sizes do not pile up.
    """

    def __init__(self) -> None:
        self._this: dict[tuple[int, float, int], tuple[WorkloadSpec, WorkloadSpec, str]] = {}
        self._last: dict[tuple[int, float, int], tuple[WorkloadSpec, WorkloadSpec, str]] = {}

    def new_pass(self) -> None:
        self._last, self._this = self._this, {}

    def get(
        self, workload: WorkloadSpec, cpu: float, memory_mb: int
    ) -> tuple[WorkloadSpec, str] | None:
        key = (id(workload), cpu, memory_mb)
        found = self._this.get(key) or self._last.get(key)
        if found is None or found[0] is not workload:  # an id reused by a newer object
            return None
        self._this[key] = found
        return found[1], found[2]

    def put(
        self, workload: WorkloadSpec, cpu: float, memory_mb: int, spec: WorkloadSpec, digest: str
    ) -> None:
        self._this[(id(workload), cpu, memory_mb)] = (workload, spec, digest)


class SpecCache:
    """Specs and hashes by (app, limits), computed once per pass: most replicas of an app
    share their limits, and hashing is the costly part. With a :class:`SpecMemo`, once
    across passes."""

    def __init__(self, apps: Mapping[str, AppManifest], memo: SpecMemo | None = None) -> None:
        self._apps = apps
        self._memo = memo
        self._cache: dict[tuple[str, float, int], tuple[WorkloadSpec, str]] = {}

    def spec_and_hash(self, a: Assignment) -> tuple[WorkloadSpec, str]:
        key = (a.app, a.cpu, a.memory_mb)
        found = self._cache.get(key)
        if found is None:
            workload = self._apps[a.app].workload
            memo = self._memo
            found = memo.get(workload, a.cpu, a.memory_mb) if memo is not None else None
            if found is None:
                spec = replica_spec(self._apps[a.app], a.cpu, a.memory_mb)
                found = (spec, spec_hash(spec))
                if memo is not None:
                    memo.put(workload, a.cpu, a.memory_mb, *found)
            self._cache[key] = found
        return found

    def hash_of(self, a: Assignment) -> str:
        return self.spec_and_hash(a)[1]


def reported_state(nodes: Mapping[str, NodeRecord], node: str, replica: str) -> str | None:
    """The state ``node``'s agent reports for ``replica`` while the node is online, else
    ``None`` (an offline node's last word is not evidence of anything running now)."""
    record = nodes.get(node)
    if record is None or record.state != "online" or record.reported is None:
        return None
    report = record.reported.workloads.get(replica)
    return None if report is None else report.state


def runs(
    nodes: Mapping[str, NodeRecord], node: str, replica: str, want_hash: str | None = None
) -> bool:
    """Whether ``node`` (online) reports ``replica`` running — with ``want_hash`` if given."""
    record = nodes.get(node)
    if record is None or record.state != "online" or record.reported is None:
        return False
    report = record.reported.workloads.get(replica)
    if report is None or report.state != "running":
        return False
    return want_hash is None or report.spec_hash == want_hash
