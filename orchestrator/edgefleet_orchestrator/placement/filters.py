"""The placement filters: small checks that each say why a node cannot take a replica.

Each filter is ``(node, ctx) -> Rejection | None``. The pipeline runs them in the order of
:data:`STATIC_FILTERS` then :data:`DYNAMIC_FILTERS` and keeps the first rejection per node,
so the order decides which reason an operator sees; it is chosen so that:

1. ``ready``, ``lost``, ``cordon`` come first: a node that cannot run anything new is
   reported as such, not as "wrong region", and these are one attribute read each.
2. ``runtime``, ``arch``, ``site``, ``region``, ``labels``, ``sensors``, ``accelerators``:
   the node's fixed facts against the app's hard constraints, cheapest (set lookups) first.
3. ``latency-probe``, ``latency``, ``bandwidth-known``, ``bandwidth``: measured values,
   which change often; absence of data is its own filter so it never evicts (below).
4. ``max-per-node``, ``host-port`` and ``resources`` are *dynamic*: they depend on what
   this very pass has placed already, so the pipeline re-checks them for every placement
   while the static ones above are computed once per node and app.

``evicts`` says whether failing a filter moves a replica that already runs on the node.
Hard constraints evict (labels changed, latency now over the limit). Readiness, cordon and
missing measurements do not: a node within its disconnect grace keeps its replicas, a
cordon only stops new placements, and a node that just restarted has no probe yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edgefleet_protocol import host_ports
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.placement.model import NodeView, Rejection


def millicores(cpu: float) -> int:
    """CPU as integer millicores, so sums of many replicas never drift in floating point."""
    return round(cpu * 1000)


@dataclass(slots=True)
class FilterContext:
    """One app's constraints in the shape filters read fast, plus the running totals of one
    placement pass (the only mutable part, owned by the pipeline)."""

    app: AppManifest
    lost: frozenset[str] = frozenset()
    cpu_m: int = 0
    memory_mb: int = 0
    sites: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    arch: frozenset[str] = frozenset()
    used_cpu_m: dict[str, int] = field(default_factory=dict)
    used_memory_mb: dict[str, int] = field(default_factory=dict)
    replicas_on: dict[str, int] = field(default_factory=dict)
    ports: frozenset[int] = frozenset()
    ports_on: dict[str, dict[int, str]] = field(default_factory=dict)
    # The pass's log of nodes whose usage changed, read by the shared score book.
    changed: list[str] = field(default_factory=list)

    @classmethod
    def for_app(
        cls,
        app: AppManifest,
        *,
        lost: frozenset[str] = frozenset(),
        used_cpu_m: dict[str, int] | None = None,
        used_memory_mb: dict[str, int] | None = None,
        ports_on: dict[str, dict[int, str]] | None = None,
        changed: list[str] | None = None,
    ) -> FilterContext:
        placement = app.placement
        return cls(
            app=app,
            lost=lost,
            cpu_m=millicores(app.workload.resources.cpu),
            memory_mb=app.workload.resources.memory_mb,
            sites=frozenset(placement.sites),
            regions=frozenset(placement.regions),
            arch=frozenset(placement.arch),
            used_cpu_m={} if used_cpu_m is None else used_cpu_m,
            used_memory_mb={} if used_memory_mb is None else used_memory_mb,
            ports=host_ports(app.workload),
            ports_on={} if ports_on is None else ports_on,
            changed=[] if changed is None else changed,
        )

    def charge(self, node: str, cpu_m: int, memory_mb: int) -> None:
        self.used_cpu_m[node] = self.used_cpu_m.get(node, 0) + cpu_m
        self.used_memory_mb[node] = self.used_memory_mb.get(node, 0) + memory_mb
        if self.ports:
            held = self.ports_on.setdefault(node, {})
            held.update(dict.fromkeys(self.ports, self.app.name))
        self.changed.append(node)

    def free_cpu_m(self, node: NodeView) -> int:
        return millicores(node.cpu_cores) - self.used_cpu_m.get(node.node, 0)

    def free_memory_mb(self, node: NodeView) -> int:
        return node.memory_mb - self.used_memory_mb.get(node.node, 0)


Check = Callable[[NodeView, FilterContext], Rejection | None]


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    check: Check
    applies: Callable[[AppManifest], bool]
    evicts: bool


def _listed(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _always(app: AppManifest) -> bool:
    return True


def _ready(node: NodeView, ctx: FilterContext) -> Rejection | None:
    return None if node.ready else Rejection("ready", "offline")


LOST = Rejection("lost", "lost (offline beyond grace)")


def _lost(node: NodeView, ctx: FilterContext) -> Rejection | None:
    return LOST if node.node in ctx.lost else None


def _cordon(node: NodeView, ctx: FilterContext) -> Rejection | None:
    if node.cordoned:
        return Rejection("cordon", "cordoned")
    if node.flapping:  # the orchestrator's own cordon, until the node is steady again
        return Rejection("flapping", "flapping (no new replicas until it is steady)")
    return None


def _runtime(node: NodeView, ctx: FilterContext) -> Rejection | None:
    runtime = ctx.app.workload.runtime
    if runtime in node.runtimes:
        return None
    return Rejection("runtime", f"runtime {runtime} not available")


def _arch(node: NodeView, ctx: FilterContext) -> Rejection | None:
    if not ctx.arch or node.arch in ctx.arch:
        return None
    return Rejection("arch", f"arch {node.arch} not in {_listed(ctx.app.placement.arch)}")


def _site(node: NodeView, ctx: FilterContext) -> Rejection | None:
    if not ctx.sites or node.site in ctx.sites:
        return None
    return Rejection("site", f"site {node.site} not in {_listed(ctx.app.placement.sites)}")


def _region(node: NodeView, ctx: FilterContext) -> Rejection | None:
    if not ctx.regions or node.region in ctx.regions:
        return None
    wanted = _listed(ctx.app.placement.regions)
    if node.region is None:
        return Rejection("region", f"no region, needs {wanted}")
    return Rejection("region", f"region {node.region} not in {wanted}")


def _labels(node: NodeView, ctx: FilterContext) -> Rejection | None:
    placement = ctx.app.placement
    for key, value in sorted(placement.selector.items()):
        if node.labels.get(key) != value:
            return Rejection("labels", f"label {key}={value} required")
    for key, value in sorted(placement.selector_not.items()):
        if node.labels.get(key) == value:
            return Rejection("labels", f"label {key}={value} forbidden")
    return None


def _sensors(node: NodeView, ctx: FilterContext) -> Rejection | None:
    for sensor in ctx.app.placement.sensors:
        if sensor not in node.sensors:
            return Rejection("sensors", f"no sensor {sensor}")
    return None


def _accelerators(node: NodeView, ctx: FilterContext) -> Rejection | None:
    for accelerator in ctx.app.placement.accelerators:
        if accelerator not in node.accelerators:
            return Rejection("accelerators", f"no accelerator {accelerator}")
    return None


def _latency_probe(node: NodeView, ctx: FilterContext) -> Rejection | None:
    limit = ctx.app.placement.max_latency_ms
    if limit is None or limit.target in node.latency_ms:
        return None
    return Rejection("latency-probe", f"no latency probe for {limit.target}")


def _latency(node: NodeView, ctx: FilterContext) -> Rejection | None:
    limit = ctx.app.placement.max_latency_ms
    measured = None if limit is None else node.latency_ms.get(limit.target)
    if limit is None or measured is None or measured <= limit.ms:
        return None
    return Rejection(
        "latency", f"latency to {limit.target} > {limit.ms:g} ms", f"{measured:g} ms measured"
    )


def _bandwidth_known(node: NodeView, ctx: FilterContext) -> Rejection | None:
    if ctx.app.placement.min_bandwidth_mbps is None or node.bandwidth_mbps is not None:
        return None
    return Rejection("bandwidth-known", "no bandwidth reported")


def _bandwidth(node: NodeView, ctx: FilterContext) -> Rejection | None:
    minimum = ctx.app.placement.min_bandwidth_mbps
    if minimum is None or node.bandwidth_mbps is None or node.bandwidth_mbps >= minimum:
        return None
    return Rejection(
        "bandwidth", f"bandwidth < {minimum:g} Mbps", f"{node.bandwidth_mbps:g} Mbps reported"
    )


def _max_per_node(node: NodeView, ctx: FilterContext) -> Rejection | None:
    limit = ctx.app.placement.max_per_node
    if limit is None or ctx.replicas_on.get(node.node, 0) < limit:
        return None
    return Rejection("max-per-node", f"max {limit} replica{'s' if limit != 1 else ''} per node")


def _host_port(node: NodeView, ctx: FilterContext) -> Rejection | None:
    held = ctx.ports_on.get(node.node)
    if not held:
        return None
    taken = sorted(p for p in ctx.ports if p in held)
    if not taken:
        return None
    port = taken[0]
    return Rejection("host-port", f"host port {port} taken", f"by {held[port]}")


def _resources(node: NodeView, ctx: FilterContext) -> Rejection | None:
    free_memory = ctx.free_memory_mb(node)
    if free_memory < ctx.memory_mb:
        return Rejection(
            "resources",
            f"not enough memory ({ctx.memory_mb} MB needed)",
            f"{max(free_memory, 0)}/{node.memory_mb} MB free",
        )
    free_cpu = ctx.free_cpu_m(node)
    if free_cpu < ctx.cpu_m:
        return Rejection(
            "resources",
            f"not enough cpu ({ctx.cpu_m / 1000:g} cores needed)",
            f"{max(free_cpu, 0) / 1000:g}/{node.cpu_cores:g} cores free",
        )
    return None


STATIC_FILTERS: tuple[Filter, ...] = (
    Filter("ready", _ready, _always, evicts=False),
    Filter("lost", _lost, _always, evicts=False),  # the pipeline evicts lost nodes itself
    Filter("cordon", _cordon, _always, evicts=False),
    Filter("runtime", _runtime, _always, evicts=True),
    Filter("arch", _arch, lambda app: bool(app.placement.arch), evicts=True),
    Filter("site", _site, lambda app: bool(app.placement.sites), evicts=True),
    Filter("region", _region, lambda app: bool(app.placement.regions), evicts=True),
    Filter(
        "labels",
        _labels,
        lambda app: bool(app.placement.selector or app.placement.selector_not),
        evicts=True,
    ),
    Filter("sensors", _sensors, lambda app: bool(app.placement.sensors), evicts=True),
    Filter(
        "accelerators", _accelerators, lambda app: bool(app.placement.accelerators), evicts=True
    ),
    Filter(
        "latency-probe",
        _latency_probe,
        lambda app: app.placement.max_latency_ms is not None,
        evicts=False,
    ),
    Filter("latency", _latency, lambda app: app.placement.max_latency_ms is not None, evicts=True),
    Filter(
        "bandwidth-known",
        _bandwidth_known,
        lambda app: app.placement.min_bandwidth_mbps is not None,
        evicts=False,
    ),
    Filter(
        "bandwidth",
        _bandwidth,
        lambda app: app.placement.min_bandwidth_mbps is not None,
        evicts=True,
    ),
)
"""Filters whose answer depends only on the node and the app: computed once per pass."""

MAX_PER_NODE = Filter(
    "max-per-node",
    _max_per_node,
    lambda app: app.placement.max_per_node is not None and not app.is_daemon,
    evicts=True,
)
RESOURCES = Filter("resources", _resources, _always, evicts=False)
# A port clash never evicts: the replica that runs keeps its port, a new one goes elsewhere.
HOST_PORT = Filter("host-port", _host_port, lambda app: bool(host_ports(app.workload)), False)

DYNAMIC_FILTERS: tuple[Filter, ...] = (
    # Per-node limit before resources: "max 1 replica per node" is the more useful reason
    # when both hold, because adding nodes (not capacity) is what would help.
    MAX_PER_NODE,
    HOST_PORT,
    RESOURCES,
)
"""Filters that depend on what the pass has placed so far: re-checked per placement."""


def active(filters: tuple[Filter, ...], app: AppManifest) -> tuple[Filter, ...]:
    """The filters that constrain ``app``. Every check also passes an empty constraint by
    itself; skipping them here only saves the calls, which matters at 1,000 nodes."""
    return tuple(f for f in filters if f.applies(app))


def first_rejection(
    node: NodeView, ctx: FilterContext, filters: tuple[Filter, ...]
) -> Rejection | None:
    """The first filter of ``filters`` that refuses ``node``, or ``None`` if all pass."""
    for f in filters:
        rejection = f.check(node, ctx)
        if rejection is not None:
            return rejection
    return None
