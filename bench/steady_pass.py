"""The whole reconcile pass when nothing changed, as the orchestrator's loop runs it.

``python -m bench.steady_pass [--nodes N] [--replicas R] [--repeat K]`` prints one JSON
object. :func:`measure` feeds a real :class:`~edgefleet_orchestrator.fleet.registry.Registry`
the capabilities, status and telemetry of N synthetic nodes (the fleet of
:mod:`bench.placement`), deploys R replicas over R/10 apps, runs passes until nothing
changes, and then times K more passes over the unchanged state — each from the registry,
with new node views, as the service does:

- ``memo``: with the memos the service keeps (placement:
  :class:`~edgefleet_orchestrator.placement.memo.PlacementMemo`; replica specs and hashes:
  :class:`~edgefleet_orchestrator.fleet.replicas.SpecMemo`; documents:
  :class:`~edgefleet_orchestrator.reconcile.documents.DocumentMemo`);
- ``afresh``: without them (every kept replica walked again, every app's spec hashed).

``placement_s`` is the part of a pass spent in placement (the pass's own timer). The rest
is the pass's other phases: sizing, documents (hashes of every node's workload set), specs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.fleet.replicas import SpecMemo
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_orchestrator.placement.model import Assignment, ViewCache
from edgefleet_orchestrator.reconcile.documents import DocumentMemo, Published
from edgefleet_orchestrator.reconcile.fleet_pass import FleetView, Knobs, PassResult, reconcile
from edgefleet_protocol import Capabilities, NodeStatus, Telemetry, TopicKind
from edgefleet_protocol.node_messages import NetworkInfo

from bench.placement import synthetic_apps, synthetic_fleet


def registry_of(nodes: int, rng: random.Random, now: float) -> Registry:
    """A registry that heard every synthetic node describe itself and come online."""
    registry = Registry(stale_after_s=90)
    for view in synthetic_fleet(nodes, rng):
        node, site = view.node, view.site
        caps = Capabilities(
            node=node,
            site=site,
            arch=view.arch,
            cpu_cores=view.cpu_cores,
            memory_mb=view.memory_mb,
            disk_mb=1000,
            runtimes=sorted(view.runtimes),
            labels=dict(view.labels),
            region=view.region,
            network=NetworkInfo(bandwidth_mbps=view.bandwidth_mbps),
        )
        status = NodeStatus(node=node, site=site, state="online", session=1, since=now)
        tele = Telemetry(node=node, site=site, ts=now, full=True, latency_ms=dict(view.latency_ms))
        registry.ingest(TopicKind.NODE_CAPABILITIES, site, node, caps, now)
        registry.ingest(TopicKind.NODE_STATUS, site, node, status, now)
        registry.ingest(TopicKind.NODE_TELEMETRY, site, node, tele, now)
    return registry


class _Loop:
    """The service's pass loop without the I/O: adopts each result as the next input."""

    def __init__(self, nodes: int, replicas: int, seed: int, memo: PlacementMemo | None):
        rng = random.Random(seed)
        self.now = 1000.0
        self.registry = registry_of(nodes, rng, self.now)
        self.apps = {a.name: a for a in synthetic_apps(replicas, rng)}
        self.assignments: tuple[Assignment, ...] = ()
        self.published: dict[str, Published] = {}
        self.memo = memo
        self.specs = SpecMemo() if memo is not None else None
        self.documents = DocumentMemo() if memo is not None else None
        self.views = ViewCache() if memo is not None else None
        self.seed = seed

    def step(self) -> PassResult:
        self.now += 1.0
        view = FleetView(
            apps=dict(self.apps),
            nodes=self.registry.nodes,
            assignments=list(self.assignments),
            published=dict(self.published),
            now=self.now,
            started_at=900.0,
            seed=self.seed,
            knobs=Knobs(
                timer=time.perf_counter,
                memo=self.memo,
                specs=self.specs,
                documents=self.documents,
                views=self.views,
            ),
        )
        result = reconcile(view)
        self.assignments = result.assignments
        for c in result.documents:
            self.published[c.node] = Published(c.site, c.generation, c.doc_hash)
        return result


def _steady(loop: _Loop, repeat: int) -> dict[str, Any]:
    for _ in range(5):  # deploy, then pass until one changes nothing
        result = loop.step()
        if not result.documents and not any(p.changed for p in result.placements.values()):
            break
    walls, cpus, placing = [], [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = loop.step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        placing.append(result.placement_s)
        if result.documents or any(p.changed for p in result.placements.values()):
            raise RuntimeError("a steady pass changed something: the fleet did not settle")
    return {
        "seconds": round(statistics.median(walls), 4),
        "cpu_seconds": round(statistics.median(cpus), 4),
        "placement_s": round(statistics.median(placing), 5),
    }


def measure(
    nodes: int = 1000, replicas: int = 10_000, seed: int = 0, repeat: int = 5
) -> dict[str, Any]:
    memo = PlacementMemo()
    with_memo = _steady(_Loop(nodes, replicas, seed, memo), repeat)
    with_memo["answered_from_memo"] = memo.hits
    afresh = _steady(_Loop(nodes, replicas, seed, None), repeat)
    return {"nodes": nodes, "replicas": replicas, "apps": max(replicas // 10, 1),
            "memo": with_memo, "afresh": afresh}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.nodes, args.replicas, args.seed, args.repeat), indent=2))


if __name__ == "__main__":
    main()
