"""Writing one reconcile pass to the store: everything it changed, in one transaction.

Who calls it: the service shell, after each pass and before publishing any of it (so a
crash can never make a published generation go backwards, nor publish a count or a move
the store does not know). Writes go through the :class:`~edgefleet_orchestrator.store.base.Store`
seam only, and only for what changed: assignments per app whose set changed, generations
of the documents to publish, manifests the autoscaler rescaled, the retiring copies when
they changed, the control documents that differ from the ones stored, and the rollouts
that recorded how their replicas update (with the copies that decision started).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgefleet_protocol import encode
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.fleet_pass import PassResult
from edgefleet_orchestrator.rollout.state import to_json
from edgefleet_orchestrator.scaling.moves import Retiring
from edgefleet_orchestrator.store.base import Store
from edgefleet_orchestrator.store.control import documents, retiring_records


def persist_pass(
    store: Store,
    result: PassResult,
    *,
    apps: Mapping[str, AppManifest],
    assignments_before: Sequence[Assignment],
    retiring_before: Sequence[Retiring],
    control_docs_before: Mapping[str, str],
) -> dict[str, str]:
    """Store ``result``; return the control documents now stored (the next call's
    ``control_docs_before``)."""
    before: dict[str, set[Assignment]] = {}
    for a in assignments_before:
        before.setdefault(a.app, set()).add(a)
    after: dict[str, set[Assignment]] = {}
    for a in result.assignments:
        after.setdefault(a.app, set()).add(a)
    docs = documents(result.control)
    with store.transaction():
        for app in sorted(set(before) | set(after)):
            if before.get(app) != after.get(app) and app in apps:
                mine = sorted(after.get(app, ()), key=lambda a: a.replica)
                store.replace_assignments(app, mine)
        store.put_generations(
            [
                (c.node, c.site, c.generation, c.doc_hash, encode(c.document).decode())
                for c in result.documents
            ]
        )
        for name, manifest in sorted(result.rescaled.items()):
            store.put_app(name, manifest.model_dump_json(exclude_none=True))
        if tuple(result.control.retiring) != tuple(retiring_before):
            store.replace_retiring(retiring_records(result.control))
        for key in sorted(set(control_docs_before) - set(docs)):
            store.delete_control(key)
        for key, text in sorted(docs.items()):
            if control_docs_before.get(key) != text:
                store.put_control(key, text)
        for name, rollout in sorted(result.rollouts.items()):
            store.put_rollout(name, to_json(rollout))
    return docs
