"""A pure, in-memory fleet for scaling tests: a registry fed by simulated agents and
whole reconcile passes, with the control state carried from pass to pass as the service
shell carries it. No broker, no clock: ``now`` moves one second per pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.documents import Published
from edgefleet_orchestrator.reconcile.fleet_pass import (
    Control,
    FleetView,
    Knobs,
    PassResult,
    reconcile,
)
from edgefleet_orchestrator.reconcile.status import app_status
from edgefleet_orchestrator.rollout.state import RolloutState
from edgefleet_orchestrator.scaling.drain import DrainRequest
from edgefleet_protocol import (
    Capabilities,
    Desired,
    NodeStatus,
    Reported,
    Telemetry,
    TopicKind,
    WorkloadReport,
    WorkloadUsage,
)
from edgefleet_protocol.manifest import AppManifest


@dataclass
class Sim:
    """A registry fed by simulated agents that start what their document names: a new
    workload reports ``starting`` first and ``running`` one report later."""

    apps: dict[str, AppManifest]
    registry: Registry = field(default_factory=lambda: Registry(stale_after_s=90))
    assignments: tuple[Assignment, ...] = ()
    published: dict[str, Published] = field(default_factory=dict)
    docs: dict[str, Desired] = field(default_factory=dict)
    control: Control = field(default_factory=Control)
    now: float = 1000.0
    last: PassResult | None = None
    rollouts: dict[str, RolloutState] = field(default_factory=dict)

    def join(self, node: str, *, cores: float = 2, memory_mb: int = 1024, site: str = "s1") -> None:
        caps = Capabilities(
            node=node, site=site, arch="aarch64", cpu_cores=cores, memory_mb=memory_mb,
            disk_mb=1, runtimes=["simulated"],
        )  # fmt: skip
        self.registry.ingest(TopicKind.NODE_CAPABILITIES, site, node, caps, self.now)
        status = NodeStatus(node=node, site=site, state="online", session=1, since=self.now)
        self.registry.ingest(TopicKind.NODE_STATUS, site, node, status, self.now)
        tele = Telemetry(node=node, site=site, ts=self.now, full=True)
        self.registry.ingest(TopicKind.NODE_TELEMETRY, site, node, tele, self.now)

    def drain(self, node: str, max_unavailable: int | None = None) -> None:
        self.registry.set_cordon(node, True)
        request = DrainRequest(node, self.now, max_unavailable)
        self.control = replace(self.control, drains={**self.control.drains, node: request})

    def step(self, knobs: Knobs | None = None) -> PassResult:
        self.now += 1
        result = reconcile(
            FleetView(
                apps=self.apps,
                nodes=self.registry.nodes,
                assignments=self.assignments,
                published=self.published,
                now=self.now,
                started_at=0,
                control=self.control,
                knobs=knobs or Knobs(),
                rollouts=dict(self.rollouts),
            )
        )
        self.rollouts.update(result.rollouts)  # as the shell stores them
        self.assignments = result.assignments
        self.apps.update(result.rescaled)  # as the shell stores them
        self.control = replace(result.control, drains=self.control.drains)
        for c in result.documents:
            self.published[c.node] = Published(c.site, c.generation, c.doc_hash)
            self.docs[c.node] = c.document
        self.last = result
        return result

    def report(self, *, settle: bool) -> None:
        """Every agent reports its document: new workloads ``starting`` unless ``settle``."""
        for node, doc in self.docs.items():
            before = self.registry.nodes[node].reported
            known = set(before.workloads) if before is not None else set()
            workloads = {
                w.name: WorkloadReport(
                    app=w.app,
                    spec_hash=w.spec_hash,
                    state="running" if settle or w.name in known else "starting",
                    since=self.now,
                )
                for w in doc.workloads
            }
            site = self.registry.nodes[node].site
            reported = Reported(
                node=node, observed_generation=doc.generation, session=1, ts=self.now,
                workloads=workloads,
            )  # fmt: skip
            self.registry.ingest(TopicKind.NODE_REPORTED, site, node, reported, self.now)

    def usage(self, replica: str, **usage: Any) -> None:
        """The replica's node reports this usage for it (``metrics={...}``, ``cpu_pct``...)."""
        node = next(a.node for a in self.assignments if a.replica == replica)
        site = self.registry.nodes[node].site
        tele = Telemetry(
            node=node, site=site, ts=self.now, workloads={replica: WorkloadUsage(**usage)}
        )
        self.registry.ingest(TopicKind.NODE_TELEMETRY, site, node, tele, self.now)

    def running(self, name: str) -> int:
        mine = [a for a in self.assignments if a.app == name]
        retiring = [r for r in self.control.retiring if r.app == name]
        status = app_status(
            self.apps[name], mine, [], self.registry.nodes, now=self.now, retiring=retiring,
            rollout=self.rollouts.get(name),
        )  # fmt: skip
        return status.running

    def where(self, name: str) -> dict[str, str]:
        return {a.replica: a.node for a in self.assignments if a.app == name}

    def settle(self) -> None:
        self.step()
        self.report(settle=True)
