"""One reconcile pass: from the full current view to new assignments and desired documents.

Pure and level-triggered (STYLE.md §6): the service hands in everything it knows — apps,
node records, current assignments, what was last published — and gets back the complete
new state plus the documents to publish. It never looks at which event woke it, so a burst
of a thousand events costs one pass, and a missed event costs nothing.

How node loss is decided here: a node that is not online has been gone for
``now - offline_since`` seconds; placement compares that with each app's
``disconnect.grace_s``. A node that holds assignments but is not in the registry at all
(the orchestrator restarted and has not heard of it yet) counts as gone since the
orchestrator started — never since the epoch — so a restart never reshuffles replicas.

The phases of a pass, in order (each a pure module of its own):

1. finish the make-before-break moves whose replacement now runs (:mod:`.moves`), and
   settle the rollout copies whose replica is done or failed (:mod:`.surges`);
2. autoscale verdicts set each autoscaled app's count for this pass (:mod:`.scaling`);
3. vertical sizing picks new limits for ``auto`` replicas (:mod:`.vertical`);
4. drains and rebalancing name the replicas to move (:mod:`.drain`, :mod:`.rebalance`);
5. placement (:mod:`.placement`), then the autoscale capacity cap; replicas a rollout
   released are copied to another node where one has room (:mod:`.surges`);
6. old copies of the replicas that just moved are kept until their replacement runs
   (a rollout's: until the rollout counts the new copy done), and each rollout records
   which of its replicas are updated make-before-break and which in place;
7. desired documents for every node whose workload set changed (:mod:`.desired`).

What must outlive a pass (autoscale memory, resize times, drains, retiring copies) comes
in as :class:`Control` and goes out, updated, in :attr:`PassResult.control`; the shell
stores it with the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.notes import Note
from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.fleet.replicas import SpecMemo
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_orchestrator.placement.model import (
    AppPlacement,
    Assignment,
    NodeView,
    Rejection,
    ViewCache,
    node_view_from,
)
from edgefleet_orchestrator.placement.pipeline import place_all
from edgefleet_orchestrator.reconcile import surges
from edgefleet_orchestrator.reconcile.documents import (
    DocumentChange,
    DocumentMemo,
    DocumentsKey,
    PlacedWorkload,
    Published,
    plan_documents,
)
from edgefleet_orchestrator.reconcile.notes import finished_note, move_notes, resize_note
from edgefleet_orchestrator.rollout.specs import RolloutSpecs
from edgefleet_orchestrator.rollout.state import RolloutState
from edgefleet_orchestrator.scaling.autoscale import ScaleMemory, Verdict
from edgefleet_orchestrator.scaling.counts import evaluate, settle_all
from edgefleet_orchestrator.scaling.drain import DrainRequest, drain_progress, plan_drains
from edgefleet_orchestrator.scaling.moves import Cause, Retiring, finish_retiring, start_retiring
from edgefleet_orchestrator.scaling.rebalance import RebalancePlan, plan_rebalance
from edgefleet_orchestrator.scaling.vertical import DEFAULT_COOLDOWN_S, Resize, key, plan_sizes


@dataclass(frozen=True, slots=True)
class Control:
    """The orchestrator's own decisions that outlive a pass (the store keeps them)."""

    autoscale: Mapping[str, ScaleMemory] = field(default_factory=dict)
    resized_at: Mapping[str, float] = field(default_factory=dict)
    drains: Mapping[str, DrainRequest] = field(default_factory=dict)
    retiring: tuple[Retiring, ...] = ()


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-pass settings from the shell: the resize cooldown, and whether (and how many
    moves) rebalancing may make in this pass, and the clock that times placement."""

    resize_cooldown_s: float = DEFAULT_COOLDOWN_S
    rebalance: bool = False
    rebalance_budget: int = 0
    timer: Callable[[], float] | None = None
    """A monotonic clock to time placement with (the metrics); ``None``: not timed."""
    memo: PlacementMemo | None = None
    """The shell's placement memo: a pass whose placement inputs equal the previous
    pass's reuses its placements (:mod:`edgefleet_orchestrator.placement.memo`)."""
    specs: SpecMemo | None = None
    """The shell's spec memo: replica specs and hashes kept across passes."""
    documents: DocumentMemo | None = None
    """The shell's document memo: nothing to publish again skips building documents."""
    views: ViewCache | None = None
    """The shell's node views, kept while a node's facts do not change."""


@dataclass(frozen=True, slots=True)
class FleetView:
    """Everything a pass needs, as plain values."""

    apps: Mapping[str, AppManifest]
    nodes: Mapping[str, NodeRecord]
    assignments: Sequence[Assignment]
    published: Mapping[str, Published]
    now: float
    started_at: float
    seed: int = 0
    control: Control = field(default_factory=Control)
    knobs: Knobs = field(default_factory=Knobs)
    # Apps under a staged rollout: which replicas run the new spec (edgefleet_orchestrator.rollout).
    rollouts: Mapping[str, RolloutState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PassResult:
    """The new state after a pass. ``rescaled`` are manifests whose replica count the
    autoscaler changed (the shell stores them); ``verdicts`` and ``drains`` (progress per
    draining node) feed app status and the ``drain``/``node`` commands; ``notes`` go to the
    audit trail; ``rebalance`` says how many moves rebalancing started and whether it has
    more to do."""

    placements: dict[str, AppPlacement]
    assignments: tuple[Assignment, ...]
    documents: list[DocumentChange]
    events: list[str] = field(default_factory=list)
    control: Control = field(default_factory=Control)
    rescaled: dict[str, AppManifest] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    drains: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    rebalance: RebalancePlan = field(default_factory=RebalancePlan)
    placement_s: float = 0.0
    """How long placement took, when the knobs carry a timer."""
    rollouts: dict[str, RolloutState] = field(default_factory=dict)
    """Rollouts that recorded how replicas update (make-before-break or in place): the
    shell stores them with the pass."""

    def assignments_of(self, app: str) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.app == app)


def node_views(nodes: Mapping[str, NodeRecord], cache: ViewCache | None = None) -> list[NodeView]:
    """Placement's view of every node that has described itself (capabilities); with the
    shell's ``cache``, unchanged nodes keep their view object."""
    views = []
    make = node_view_from if cache is None else cache.view
    if cache is not None:
        cache.new_pass()
    for record in nodes.values():
        if record.capabilities is None:
            continue
        views.append(
            make(
                record.capabilities,
                ready=record.state == "online",
                cordoned=record.cordoned,
                latency_ms=record.telemetry.latency_ms,
                flapping=record.flapping,
            )
        )
    views.sort(key=lambda v: v.node)
    return views


def offline_durations(view: FleetView) -> dict[str, float]:
    """Seconds each not-online node has been gone (see the module docstring)."""
    gone: dict[str, float] = {}
    for node, record in view.nodes.items():
        if record.state == "online":
            continue
        since = record.offline_since if record.offline_since is not None else view.started_at
        gone[node] = max(0.0, view.now - since)
    for a in view.assignments:
        if a.node not in view.nodes:
            gone[a.node] = max(0.0, view.now - view.started_at)
    return gone


def reconcile(view: FleetView) -> PassResult:
    """One pass over the full view (see the module docstring for its phases). Apps are
    placed in name order, each seeing what the previous ones took."""
    nodes = node_views(view.nodes, view.knobs.views)
    gone = offline_durations(view)
    control = view.control
    current = [a for a in view.assignments if a.app in view.apps]
    events = [
        f"app {a.app} was deleted: removing replica {a.replica} from node {a.node}"
        for a in view.assignments
        if a.app not in view.apps
    ]
    settled = surges.settle(control.retiring, current, view.rollouts)
    current = settled.assignments
    spec_memo = view.knobs.specs
    if spec_memo is not None:
        spec_memo.new_pass()
    specs = RolloutSpecs(view.apps, view.rollouts, spec_memo)
    retiring, finished = finish_retiring(settled.retiring, current, view.nodes, specs)
    notes = [finished_note(f) for f in [*settled.finished, *finished]]

    evaluated, apps = evaluate(view.apps, current, view.nodes, control.autoscale, now=view.now)
    reserved = [r.copy for r in retiring]
    sizing = plan_sizes(
        apps,
        current,
        view.nodes,
        reserved=reserved,
        resized_at=control.resized_at,
        now=view.now,
        cooldown_s=view.knobs.resize_cooldown_s,
    )
    drains = plan_drains(control.drains, apps, current, retiring, view.nodes)
    rebalance = RebalancePlan()
    if view.knobs.rebalance:
        rebalance = plan_rebalance(
            apps,
            current,
            nodes,
            retiring=retiring,
            nodes=view.nodes,
            budget=view.knobs.rebalance_budget,
            busy=frozenset(drains.leaving),
        )
    leaving, causes = _merge_leaving(drains.leaving, rebalance.leaving)
    asked = surges.requests(apps, view.rollouts, current, retiring, leaving)

    timer = view.knobs.timer
    placing_since = timer() if timer is not None else 0.0
    placements = place_all(
        apps.values(),
        nodes,
        current,
        seed=view.seed,
        offline_for_s=gone,
        sizes=sizing.sizes,
        leaving=leaving,
        reserved=reserved,
        memo=view.knobs.memo,
        surge=asked.surge,
    )
    placement_s = timer() - placing_since if timer is not None else 0.0
    verdicts, memory, rescaled, scale_notes = settle_all(
        evaluated, placements, apps, control.autoscale, now=view.now
    )
    notes.extend(scale_notes)
    for name in evaluated:  # the trial count of a capped scale-up is not kept
        apps[name] = rescaled.get(name, view.apps[name])
    after = [a for name in sorted(placements) for a in placements[name].assignments]
    causes = surges.with_rollout_causes(causes, asked)
    started = start_retiring(placements, causes, current, view.nodes, now=view.now)
    retiring = _without_clashes((*retiring, *started), after)
    notes.extend(move_notes(started, leaving))
    decided = surges.decide(view.rollouts, asked, placements, view.now)
    applied = _applied(sizing.resizes, after)
    notes.extend(resize_note(r) for r in applied)
    for name in sorted(placements):
        events.extend(_describe(placements[name]))

    rollouts = {**view.rollouts, **decided}
    doc_key = DocumentsKey(
        tuple(after), tuple(retiring), tuple(apps.items()), rollouts, view.published
    )
    documents: list[DocumentChange] = []
    doc_memo = view.knobs.documents
    if doc_memo is None or not doc_memo.nothing_to_publish(doc_key):
        specs = RolloutSpecs(apps, rollouts, spec_memo)
        placed = _placed_workloads(after, specs) + _placed_copies(retiring, specs)
        documents = plan_documents(placed, view.published, now=view.now)
        if doc_memo is not None:
            doc_memo.remember(doc_key, documents)
    progress = {
        node: drain_progress(
            request,
            apps=apps,
            assignments=after,
            retiring=retiring,
            placements=placements,
            waiting=drains.waiting,
            nodes=view.nodes,
        )
        for node, request in sorted(control.drains.items())
    }
    alive = {key(a.app, a.replica) for a in after}
    resized_at = {k: t for k, t in control.resized_at.items() if k in alive}
    resized_at.update({key(r.app, r.replica): view.now for r in applied})
    return PassResult(
        placements=placements,
        assignments=tuple(sorted(after, key=lambda a: (a.app, a.replica))),
        documents=documents,
        events=events,
        control=Control(
            autoscale={n: m for n, m in {**control.autoscale, **memory}.items() if n in apps},
            resized_at=resized_at,
            drains=control.drains,
            retiring=retiring,
        ),
        rescaled=rescaled,
        verdicts=verdicts,
        drains=progress,
        notes=notes,
        rebalance=rebalance,
        placement_s=placement_s,
        rollouts=decided,
    )


def _merge_leaving(
    drained: Mapping[str, Mapping[str, Rejection]],
    rebalanced: Mapping[str, Mapping[str, Rejection]],
) -> tuple[dict[str, dict[str, Rejection]], dict[str, dict[str, Cause]]]:
    leaving: dict[str, dict[str, Rejection]] = {}
    causes: dict[str, dict[str, Cause]] = {}
    both: tuple[tuple[Cause, Mapping[str, Mapping[str, Rejection]]], ...] = (
        ("rebalance", rebalanced),
        ("drain", drained),  # second: a drain's reason wins for a replica both name
    )
    for cause, asked in both:
        for app, replicas in asked.items():
            for replica, why in replicas.items():
                leaving.setdefault(app, {})[replica] = why
                causes.setdefault(app, {})[replica] = cause
    return leaving, causes


def _without_clashes(
    retiring: Sequence[Retiring], assignments: Sequence[Assignment]
) -> tuple[Retiring, ...]:
    """Old copies minus any whose node now holds the replica itself (a node's document
    can name a workload once)."""
    where = {(a.app, a.replica): a.node for a in assignments}
    return tuple(r for r in retiring if where.get((r.app, r.replica), r.node) != r.node)


def _applied(resizes: Sequence[Resize], after: Sequence[Assignment]) -> list[Resize]:
    """The resizes placement applied (a grown size that no longer fit was not)."""
    final = {(a.app, a.replica): a for a in after}
    applied = []
    for r in resizes:
        a = final.get((r.app, r.replica))
        if (
            a is not None
            and a.node == r.node
            and (a.cpu, a.memory_mb)
            == (
                r.after.cpu,
                r.after.memory_mb,
            )
        ):
            applied.append(r)
    return applied


def _placed_workloads(
    assignments: Sequence[Assignment], specs: RolloutSpecs
) -> list[PlacedWorkload]:
    placed = []
    for a in assignments:
        spec, digest = specs.spec_and_hash(a)
        placed.append(
            PlacedWorkload(
                name=a.replica,
                app=a.app,
                node=a.node,
                site=a.site,
                spec=spec,
                spec_hash=digest,
                guard=specs.guard_of(a),
            )
        )
    return placed


def _placed_copies(retiring: Sequence[Retiring], specs: RolloutSpecs) -> list[PlacedWorkload]:
    """Old copies run what they ran: a rollout's the spec it started from, without a
    revert guard (it is the version to revert to); a drain's or rebalancing's as their
    replica (spec and guard)."""
    placed = _placed_workloads([r.copy for r in retiring if r.cause != "rollout"], specs)
    for r in retiring:
        if r.cause == "rollout":
            spec, digest = specs.previous(r.copy)
            a = r.copy
            placed.append(PlacedWorkload(a.replica, a.app, a.node, a.site, spec, digest))
    return placed


def _describe(result: AppPlacement) -> list[str]:
    if not result.changed:
        return []
    return [f"placement {result}"]


__all__ = ["Control", "FleetView", "Knobs", "PassResult", "node_views", "reconcile"]
