"""Reconcile scenarios, pure: a registry fed protocol messages, manifests, and passes.

Each scenario walks the fleet through time with an explicit clock and checks the
assignments and the desired documents the pass decides to publish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.documents import Published
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, PassResult, reconcile
from edgefleet_protocol import Capabilities, NodeStatus, Telemetry, TopicKind
from edgefleet_protocol.manifest import AppManifest, load_manifest
from edgefleet_protocol.node_messages import NetworkInfo


def app(name: str, **extra: Any) -> AppManifest:
    body: dict[str, Any] = {
        "name": name,
        "workload": {"runtime": "simulated", "resources": {"cpu": 0.25, "memory_mb": 64}},
        "disconnect": {"grace_s": 30},
    }
    if extra.get("mode") != "daemon":
        body["replicas"] = 2
    body.update(extra)
    return load_manifest(json.dumps(body))


@dataclass
class Fleet:
    registry: Registry = field(default_factory=lambda: Registry(stale_after_s=90))
    apps: dict[str, AppManifest] = field(default_factory=dict)
    assignments: tuple[Assignment, ...] = ()
    published: dict[str, Published] = field(default_factory=dict)
    now: float = 1000.0
    started_at: float = 900.0
    sessions: dict[str, int] = field(default_factory=dict)

    def join(self, node: str, site: str = "s1", labels: dict[str, str] | None = None) -> None:
        session = self.sessions.get(node, 0) + 1
        self.sessions[node] = session
        caps = Capabilities(
            node=node,
            site=site,
            arch="aarch64",
            cpu_cores=2,
            memory_mb=1024,
            disk_mb=1000,
            runtimes=["simulated"],
            labels=labels or {},
            network=NetworkInfo(bandwidth_mbps=50),
        )
        self.registry.ingest(TopicKind.NODE_CAPABILITIES, site, node, caps, self.now)
        status = NodeStatus(node=node, site=site, state="online", session=session, since=self.now)
        self.registry.ingest(TopicKind.NODE_STATUS, site, node, status, self.now)
        tele = Telemetry(node=node, site=site, ts=self.now, full=True)
        self.registry.ingest(TopicKind.NODE_TELEMETRY, site, node, tele, self.now)

    def leave(self, node: str) -> None:
        rec = self.registry.nodes[node]
        status = NodeStatus(
            node=node, site=rec.site, state="offline", session=self.sessions[node], since=self.now
        )
        self.registry.ingest(TopicKind.NODE_STATUS, rec.site, node, status, self.now)

    def step(self, seconds: float = 1.0) -> PassResult:
        self.now += seconds
        result = reconcile(
            FleetView(
                apps=self.apps,
                nodes=self.registry.nodes,
                assignments=self.assignments,
                published=self.published,
                now=self.now,
                started_at=self.started_at,
            )
        )
        self.assignments = result.assignments
        for c in result.documents:
            self.published[c.node] = Published(c.site, c.generation, c.doc_hash)
        return result

    def where(self) -> dict[str, str]:
        return {a.replica: a.node for a in self.assignments}


def test_nothing_changed_means_no_documents() -> None:
    fleet = Fleet(apps={"a": app("a")})
    fleet.join("n1")
    fleet.join("n2")
    first = fleet.step()
    assert {c.node for c in first.documents} == {"n1", "n2"}
    assert all(c.generation == 1 for c in first.documents)
    assert fleet.step().documents == []


def test_a_new_node_gets_nothing_moved_to_it_but_new_replicas_may_land_there() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=2)})
    fleet.join("n1")
    fleet.step()
    before = fleet.where()
    fleet.join("n2")
    result = fleet.step()
    assert fleet.where() == before, "existing replicas are never moved to improve a score"
    assert result.documents == []
    fleet.apps["a"] = app("a", replicas=3)
    fleet.step()
    assert fleet.where()["a-2"] == "n2", "spread prefers the empty node"


def test_node_loss_within_grace_keeps_replicas_and_after_grace_moves_them() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=1)})
    fleet.join("n1")
    fleet.step()
    host = fleet.where()["a-0"]
    other = "n2"
    fleet.join(other)
    fleet.step()
    fleet.leave(host)
    fleet.step(10)
    assert fleet.where()["a-0"] == host, "inside the 30 s grace nothing moves"
    result = fleet.step(25)
    assert fleet.where()["a-0"] == other
    gens = {c.node: c for c in result.documents}
    assert gens[other].document.workloads[0].name == "a-0"
    assert gens[host].document.workloads == [], "the lost node's document is emptied"


def test_a_returning_node_keeps_what_still_matches_and_loses_what_moved() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=1), "d": app("d", mode="daemon")})
    fleet.join("n1")
    fleet.join("n2")
    fleet.step()
    host = fleet.where()["a-0"]
    gen_before = fleet.published[host].generation
    fleet.leave(host)
    fleet.step(31)
    assert fleet.where()["a-0"] != host
    daemon = [a.replica for a in fleet.assignments if a.node == host and a.app == "d"]
    assert daemon, "a daemon replica stays in a lost node's document: it runs nowhere else"
    fleet.join(host)  # a new session: the node is back
    result = fleet.step()
    names = {w.name for c in result.documents if c.node == host for w in c.document.workloads}
    assert "a-0" not in names
    assert fleet.published[host].generation > gen_before
    assert [a.replica for a in fleet.assignments if a.node == host and a.app == "d"] == daemon


def test_daemon_app_follows_label_changes() -> None:
    fleet = Fleet(
        apps={"logs": app("logs", mode="daemon", placement={"selector": {"role": "edge"}})}
    )
    fleet.join("n1", labels={"role": "edge"})
    fleet.join("n2", labels={"role": "core"})
    fleet.step()
    assert {a.node for a in fleet.assignments} == {"n1"}
    fleet.join("n2", labels={"role": "edge"})
    fleet.step()
    assert {a.node for a in fleet.assignments} == {"n1", "n2"}
    fleet.join("n1", labels={"role": "core"})
    fleet.step()
    assert {a.node for a in fleet.assignments} == {"n2"}


def test_scale_up_and_down_touches_only_the_changed_replicas() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=2)})
    for n in ("n1", "n2", "n3"):
        fleet.join(n)
    fleet.step()
    before = fleet.where()
    fleet.apps["a"] = app("a", replicas=4)
    fleet.step()
    after = fleet.where()
    assert {k: after[k] for k in before} == before
    assert set(after) == {"a-0", "a-1", "a-2", "a-3"}
    fleet.apps["a"] = app("a", replicas=1)
    fleet.step()
    assert fleet.where() == {"a-0": before["a-0"]}


def test_deleting_an_app_empties_its_nodes_documents() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=2)})
    fleet.join("n1")
    fleet.step()
    del fleet.apps["a"]
    result = fleet.step()
    assert fleet.assignments == ()
    assert [c.document.workloads for c in result.documents] == [[]]
    assert any("deleted" in e for e in result.events)


def test_assignments_to_unknown_nodes_survive_an_orchestrator_restart_within_grace() -> None:
    fleet = Fleet(apps={"a": app("a", replicas=1)})
    fleet.join("n1")
    fleet.step()
    restarted = Fleet(
        apps=fleet.apps,
        assignments=fleet.assignments,
        published=dict(fleet.published),
        now=fleet.now,
        started_at=fleet.now,
    )
    restarted.join("n2")
    restarted.step(1)
    assert restarted.where() == fleet.where(), "n1 not heard yet, but grace has not run out"
