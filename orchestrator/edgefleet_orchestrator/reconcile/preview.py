"""Where an app's replicas would go if its manifest were ``app``: a trial pass, as rows.

Pure. Who calls it: the ``plan`` handler (:mod:`edgefleet_orchestrator.service.plans`),
with the live fleet view and the manifest a deploy would store. Why a whole pass and not
just placement: the answer must be the one the next real pass would give (the other apps'
replicas, drains, cordons and spreads all count), and the pass is what gives it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.reconcile.fleet_pass import FleetView
from edgefleet_orchestrator.reconcile.isolation import reconcile_isolating


def placement_preview(app: AppManifest, view: FleetView) -> dict[str, Any]:
    """``{desired, replicas: [{replica, node, site, change, from?}], unplaced}``: each
    replica's node after the trial pass and what happens to it (``kept``, ``placed``,
    ``moved`` (with the node it leaves), ``stopped``), and the replicas that fit nowhere
    with their grouped reasons."""
    trial = replace(view, apps={**view.apps, app.name: app}, published={})
    result, _ = reconcile_isolating(trial, {})
    placement = result.placements.get(app.name)
    if placement is None:
        return {"desired": 0, "replicas": [], "unplaced": []}
    bucket = {r: "kept" for r in placement.kept}
    bucket |= {r: "placed" for r in placement.placed}
    bucket |= {r: "moved" for r in placement.moved}
    rows: list[dict[str, Any]] = []
    for a in sorted(placement.assignments, key=lambda a: a.replica):
        row: dict[str, Any] = {"replica": a.replica, "node": a.node, "site": a.site}
        row["change"] = bucket.get(a.replica, "kept")
        if a.replica in placement.moves:
            row["from"] = placement.moves[a.replica][0]
        rows.append(row)
    now_on = {a.replica: a for a in view.assignments if a.app == app.name}
    for replica in sorted(placement.stopped):
        was = now_on.get(replica)
        rows.append({"replica": replica, "node": was.node if was else None,
                     "site": was.site if was else None, "change": "stopped"})  # fmt: skip
    return {
        "desired": placement.desired,
        "replicas": rows,
        "unplaced": [u.model_dump(mode="json") for u in placement.unplaced],
    }
