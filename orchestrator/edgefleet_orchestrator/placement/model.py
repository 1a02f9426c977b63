"""The plain values placement works on: node views in, assignments and reasons out.

The reconcile loop builds a :class:`NodeView` per node from what the agent published
(capabilities, telemetry, presence) and what operators decided (cordon), and keeps the
current :class:`Assignment` list; :func:`~edgefleet_orchestrator.placement.pipeline.place_app`
turns those into an :class:`AppPlacement`. Everything here is frozen, so a pass can never
change the inputs it was given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edgefleet_protocol import Capabilities, Unplaced

_EMPTY: Mapping[str, str] = MappingProxyType({})
_NO_LATENCY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """What placement needs to know about one node, at one moment.

    ``ready`` is "online and heartbeat not stale"; ``latency_ms`` holds the node's latest
    probe results by target; ``bandwidth_mbps`` is ``None`` when the node never said.
    """

    node: str
    site: str
    ready: bool
    cordoned: bool
    arch: str
    runtimes: frozenset[str]
    cpu_cores: float
    memory_mb: int
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    region: str | None = None
    sensors: frozenset[str] = frozenset()
    accelerators: frozenset[str] = frozenset()
    latency_ms: Mapping[str, float] = field(default_factory=lambda: _NO_LATENCY)
    bandwidth_mbps: float | None = None
    flapping: bool = False
    """Left online too often lately: like a cordon, no new replicas (fleet.liveness)."""


def node_view_from(
    caps: Capabilities,
    *,
    ready: bool,
    cordoned: bool = False,
    latency_ms: Mapping[str, float] | None = None,
    flapping: bool = False,
) -> NodeView:
    """A node view from an agent's capabilities plus the orchestrator's own knowledge."""
    return NodeView(
        node=caps.node,
        site=caps.site,
        ready=ready,
        cordoned=cordoned,
        arch=caps.arch,
        runtimes=frozenset(caps.runtimes),
        labels=MappingProxyType(dict(caps.labels)),
        region=caps.region,
        sensors=frozenset(caps.sensors),
        accelerators=frozenset(caps.accelerators),
        cpu_cores=caps.cpu_cores,
        memory_mb=caps.memory_mb,
        latency_ms=MappingProxyType(dict(latency_ms or {})),
        bandwidth_mbps=caps.network.bandwidth_mbps,
        flapping=flapping,
    )


class ViewCache:
    """Node views kept across passes by the shell: a node whose capabilities (the same
    object), readiness, cordon, latency probes and flapping are unchanged keeps its view.

    Why: building 1,000 views (frozensets, copied label and latency maps) was 8 ms of every
    pass, a third of a pass with nothing changed; the same view objects also make the
    placement memo's comparison an identity check. Views of nodes not asked about in the
    last pass are dropped (:meth:`new_pass`).
    """

    def __init__(self) -> None:
        self._this: dict[str, tuple[Capabilities, tuple[object, ...], NodeView]] = {}
        self._last: dict[str, tuple[Capabilities, tuple[object, ...], NodeView]] = {}

    def new_pass(self) -> None:
        self._last, self._this = self._this, {}

    def view(
        self,
        caps: Capabilities,
        *,
        ready: bool,
        cordoned: bool = False,
        latency_ms: Mapping[str, float] | None = None,
        flapping: bool = False,
    ) -> NodeView:
        facts = (ready, cordoned, dict(latency_ms or {}), flapping)
        found = self._this.get(caps.node) or self._last.get(caps.node)
        if found is None or found[0] is not caps or found[1] != facts:
            made = node_view_from(
                caps, ready=ready, cordoned=cordoned, latency_ms=latency_ms, flapping=flapping
            )
            found = (caps, facts, made)
        self._this[caps.node] = found
        return found[2]


@dataclass(frozen=True, slots=True)
class Assignment:
    """One replica (a workload name) of ``app`` bound to ``node``, reserving its resources."""

    replica: str
    app: str
    node: str
    site: str
    cpu: float
    memory_mb: int


@dataclass(frozen=True, slots=True)
class Size:
    """One replica's limits: what it reserves on its node and is limited to there."""

    cpu: float
    memory_mb: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a node cannot take (another) replica: the filter that said no, and a reason.

    ``reason`` is the same text for every node that fails the same way (it groups); values
    that differ per node, such as how much memory is free, go in ``detail``.
    """

    filter: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


def group_reasons(rejections: Iterable[Rejection]) -> list[str]:
    """``["12 nodes: not enough memory (512 MB needed)", "3 nodes: region us not in [eu]"]``:
    nodes counted by identical reason, most common first, ties in text order."""
    counts = Counter(r.reason for r in rejections)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [f"{n} node{'s' if n != 1 else ''}: {reason}" for reason, n in ordered]


@dataclass(frozen=True, slots=True)
class AppPlacement:
    """The outcome of one placement pass for one app.

    ``assignments`` is the app's complete set after the pass. The buckets name replicas:
    ``kept`` stay where they run, ``placed`` are new, ``stopped`` are removed and not
    replaced, ``moved`` are removed from one node and placed on another (``moves`` says
    from where to where). ``unplaced`` counts replicas that fit nowhere, with grouped
    reasons; ``rejections`` keeps every node's own reason, where one was found. ``stuck``
    names replicas that were asked to leave their node (drain, rebalancing) but fit nowhere
    else: they stay where they run, kept, with the grouped reasons.
    """

    app: str
    desired: int
    assignments: tuple[Assignment, ...]
    kept: tuple[str, ...] = ()
    placed: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    moves: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    unplaced: tuple[Unplaced, ...] = ()
    rejections: Mapping[str, Rejection] = field(default_factory=lambda: MappingProxyType({}))
    stuck: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def unplaced_count(self) -> int:
        return sum(u.count for u in self.unplaced)

    @property
    def unplaced_text(self) -> str:
        """``"2 nodes: region us not in [eu]; 1 node: offline"`` (empty when all placed)."""
        return " | ".join("; ".join(u.reasons) for u in self.unplaced)

    @property
    def changed(self) -> bool:
        return bool(self.placed or self.stopped or self.moved)

    def __str__(self) -> str:
        def names(bucket: tuple[str, ...]) -> str:
            return ", ".join(bucket) or "-"

        moved = ", ".join(f"{r} {a}->{b}" for r, (a, b) in sorted(self.moves.items())) or "-"
        text = (
            f"{self.app}: kept [{names(self.kept)}] placed [{names(self.placed)}] "
            f"stopped [{names(self.stopped)}] moved [{moved}]"
        )
        if self.unplaced:
            text += f" unplaced {self.unplaced_count} ({self.unplaced_text})"
        return text
