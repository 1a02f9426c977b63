"""Per-node desired documents: build them from assignments, bump generations on change.

Pure. The reconcile pass hands in every assignment and the app manifests; this module
groups workloads per node, hashes each node's workload list, and compares with the last
published hash. Only a node whose list changed gets ``generation + 1`` and is republished —
the rule agents rely on (higher applies, equal is a no-op). A node that lost all its
workloads still gets a new (empty) document, which is how a returning node learns to stop
what it should no longer run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgefleet_protocol import Desired, DesiredWorkload, RolloutGuard, WorkloadSpec
from edgefleet_protocol.workload import canonical_json


@dataclass(frozen=True, slots=True)
class PlacedWorkload:
    """One replica bound to a node, with the spec it should run there."""

    name: str
    app: str
    node: str
    site: str
    spec: WorkloadSpec
    spec_hash: str
    guard: RolloutGuard | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """What was last published for a node: its generation and the hash of its workloads."""

    site: str
    generation: int
    doc_hash: str


@dataclass(frozen=True, slots=True)
class DocumentChange:
    node: str
    site: str
    generation: int
    doc_hash: str
    document: Desired


def workloads_hash(workloads: Iterable[DesiredWorkload | PlacedWorkload]) -> str:
    """Hash of a node's workload set (names, apps, spec hashes and rollout guards),
    order-independent. An entry without a guard hashes as it always did, so documents
    published before rollouts existed are not republished. A desired entry and the placed
    workload it is built from hash the same."""
    items = sorted(
        (w.name, w.app, w.spec_hash)
        if (guard := _guard(w)) is None
        else (w.name, w.app, w.spec_hash, guard.model_dump_json())
        for w in workloads
    )
    return "sha256:" + hashlib.sha256(canonical_json(items)).hexdigest()[:16]


def _guard(w: DesiredWorkload | PlacedWorkload) -> RolloutGuard | None:
    return w.rollout if isinstance(w, DesiredWorkload) else w.guard


def plan_documents(
    placed: Iterable[PlacedWorkload],
    published: Mapping[str, Published],
    *,
    now: float,
) -> list[DocumentChange]:
    """The documents that must be (re)published, sorted by node.

    Nodes that appear in ``published`` but have no workloads now get an empty document
    (once: an empty set hashes the same every time).
    """
    # Hash first, from the placed entries themselves; the pydantic entries and documents
    # are built only for the nodes whose set changed (in a pass that changes nothing,
    # none: building 10,000 entries to compare hashes was most of such a pass's cost).
    per_node: dict[str, list[PlacedWorkload]] = defaultdict(list)
    site_of: dict[str, str] = {}
    for p in placed:
        per_node[p.node].append(p)
        site_of[p.node] = p.site
    for node, last in published.items():
        per_node.setdefault(node, [])
        site_of.setdefault(node, last.site)

    changes: list[DocumentChange] = []
    for node in sorted(per_node):
        entries = sorted(per_node[node], key=lambda w: w.name)
        digest = workloads_hash(entries)
        prev = published.get(node)
        if prev is not None and prev.doc_hash == digest and prev.site == site_of[node]:
            continue
        generation = (prev.generation if prev is not None else 0) + 1
        doc = Desired(
            node=node,
            site=site_of[node],
            generation=generation,
            issued_at=now,
            workloads=[
                DesiredWorkload(
                    name=p.name, app=p.app, spec=p.spec, spec_hash=p.spec_hash, rollout=p.guard
                )
                for p in entries
            ],
        )
        changes.append(DocumentChange(node, site_of[node], generation, digest, doc))
    return changes


@dataclass(frozen=True, slots=True)
class DocumentsKey:
    """What a pass's documents are made from: the assignments after placement, the old
    copies still running, the manifests and rollouts their specs come from, and what was
    last published (``issued_at`` is the pass's clock, so only an empty result is reused)."""

    assignments: tuple[object, ...]
    copies: tuple[object, ...]
    apps: tuple[tuple[str, object], ...]
    rollouts: Mapping[str, object]
    published: Mapping[str, Published]


class DocumentMemo:
    """Kept by the shell: a pass whose documents' inputs equal the previous pass's, when
    that pass had nothing to publish, has nothing to publish either — without building a
    placed workload per replica and hashing every node's set again (most of a pass with
    nothing changed once placement is answered from its memo)."""

    def __init__(self) -> None:
        self._key: DocumentsKey | None = None
        self._empty = False
        self.hits = 0

    def nothing_to_publish(self, key: DocumentsKey) -> bool:
        if self._empty and self._key is not None and self._key == key:
            self.hits += 1
            self._key = key  # the newer objects: the next comparison is by identity
            return True
        return False

    def remember(self, key: DocumentsKey, documents: list[DocumentChange]) -> None:
        self._key, self._empty = key, not documents
