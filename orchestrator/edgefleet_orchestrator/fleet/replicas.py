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


class SpecCache:
    """Specs and hashes by (app, limits), computed once per pass: most replicas of an app
    share their limits, and hashing is the costly part."""

    def __init__(self, apps: Mapping[str, AppManifest]) -> None:
        self._apps = apps
        self._cache: dict[tuple[str, float, int], tuple[WorkloadSpec, str]] = {}

    def spec_and_hash(self, a: Assignment) -> tuple[WorkloadSpec, str]:
        key = (a.app, a.cpu, a.memory_mb)
        found = self._cache.get(key)
        if found is None:
            spec = replica_spec(self._apps[a.app], a.cpu, a.memory_mb)
            found = self._cache[key] = (spec, spec_hash(spec))
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
