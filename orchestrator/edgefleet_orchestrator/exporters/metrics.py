"""The orchestrator's Prometheus metrics, built at scrape time from the live state.

Called by :mod:`.http` for each ``GET /metrics`` (in the service's event loop, so every
value comes from one consistent moment: no thread ever reads state the loop is changing).
Gauges are computed from the state as it is (nodes, apps, replicas); counters and
histograms come from :class:`~edgefleet_orchestrator.service.config.ServiceStats`, which the
service bumps as it works.

Labels stay bounded: topic kinds and invalid-message reasons are closed sets; apps are
as many as operators deploy. Per-node series (``node``, ``site`` labels) are opt-in and
only while the fleet has at most ``per_node_limit`` nodes, so a growing fleet can never
grow the series count without bound; above it ``edgefleet_per_node_metrics_suppressed``
says so. Each family is built on its own: one that fails (a bug, an odd value) is left
out and counted in ``edgefleet_metrics_errors_total``; the rest are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, get_args

from edgefleet_protocol.rollout import RolloutPhase
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from edgefleet_orchestrator.fleet.registry import NodeState
from edgefleet_orchestrator.service.config import Observations
from edgefleet_orchestrator.service.events import Invalid

if TYPE_CHECKING:
    from edgefleet_orchestrator.service.orchestrator import Orchestrator

log = logging.getLogger("edgefleet.metrics")

APP_STATES = ("healthy", "progressing", "degraded")
NODE_STATES: tuple[str, ...] = get_args(NodeState)
INVALID_REASONS: tuple[str, ...] = get_args(Invalid)
ROLLOUT_PHASES: tuple[str, ...] = get_args(RolloutPhase)


def histogram(name: str, doc: str, obs: Observations) -> HistogramMetricFamily:
    """A Prometheus histogram (cumulative buckets) from fixed-bucket observations."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*obs.bounds, float("inf")), obs.counts, strict=True):
        running += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=obs.total)


def ratio(pct: float | None) -> float:
    """A percentage as the 0-1 ratio Prometheus conventions ask for (NaN when unknown)."""
    return float("nan") if pct is None else pct / 100.0


class OrchestratorCollector(Collector):
    """Every ``edgefleet_*`` family of one orchestrator (see docs/operations.md)."""

    def __init__(self, orchestrator: Orchestrator, *, per_node_limit: int = 0) -> None:
        self._orch = orchestrator
        self._per_node_limit = per_node_limit
        self._errors = 0

    def collect(self) -> Iterator[Metric]:
        builders: list[Callable[[], Iterable[Metric]]] = [
            self._nodes,
            self._apps,
            self._traffic,
            self._durations,
            self._service,
            self._rollouts_and_services,
            self._per_node,
        ]
        families: list[Metric] = []
        for build in builders:
            try:
                families.extend(build())
            except Exception:  # a metrics bug must never cost the scrape, let alone the loop
                self._errors += 1
                log.exception("metrics family %s failed", build.__name__)
        yield from families
        errors = CounterMetricFamily(
            "edgefleet_metrics_errors",
            "Metric families left out of a scrape because building them failed.",
        )
        errors.add_metric([], self._errors)
        yield errors

    def _nodes(self) -> Iterable[Metric]:
        nodes = list(self._orch.state.registry.nodes.values())
        by_state = GaugeMetricFamily(
            "edgefleet_nodes", "Nodes the orchestrator knows, by state.", labels=["state"]
        )
        for state in NODE_STATES:
            by_state.add_metric([state], sum(1 for r in nodes if r.state == state))
        cordoned = GaugeMetricFamily("edgefleet_nodes_cordoned", "Nodes that take no new replicas.")
        cordoned.add_metric([], sum(1 for r in nodes if r.cordoned))
        return [by_state, cordoned]

    def _apps(self) -> Iterable[Metric]:
        state = self._orch.state
        by_state = GaugeMetricFamily(
            "edgefleet_apps",
            "Deployed apps, by state (no status yet: progressing).",
            labels=["state"],
        )
        states: list[str] = [
            s.state if (s := state.statuses.get(a)) else "progressing" for a in state.apps
        ]
        for name in APP_STATES:
            by_state.add_metric([name], states.count(name))
        desired = GaugeMetricFamily(
            "edgefleet_app_replicas_desired", "Replicas an app should run.", labels=["app"]
        )
        running = GaugeMetricFamily(
            "edgefleet_app_replicas_running", "Replicas of an app reported running.", labels=["app"]
        )
        total_desired = total_running = 0
        for app in sorted(state.apps):
            status = state.statuses.get(app)
            want = status.desired if status else (state.apps[app].replicas or 0)
            have = status.running if status else 0
            desired.add_metric([app], want)
            running.add_metric([app], have)
            total_desired += want
            total_running += have
        fleet_desired = GaugeMetricFamily(
            "edgefleet_replicas_desired", "Replicas all apps should run together."
        )
        fleet_desired.add_metric([], total_desired)
        fleet_running = GaugeMetricFamily(
            "edgefleet_replicas_running", "Replicas of all apps reported running."
        )
        fleet_running.add_metric([], total_running)
        return [by_state, desired, running, fleet_desired, fleet_running]

    def _traffic(self) -> Iterable[Metric]:
        stats = self._orch.stats
        received = CounterMetricFamily(
            "edgefleet_messages_received",
            "MQTT messages the orchestrator received, by topic kind (unknown: not ours).",
            labels=["kind"],
        )
        for kind, n in sorted(stats.received_by_kind.items()):
            received.add_metric([kind], n)
        published = CounterMetricFamily(
            "edgefleet_messages_published",
            "MQTT messages the broker took from the orchestrator, by topic kind.",
            labels=["kind"],
        )
        for kind, n in sorted(stats.published_by_kind.items()):
            published.add_metric([kind], n)
        invalid = CounterMetricFamily(
            "edgefleet_messages_invalid",
            "Messages dropped as invalid, by reason.",
            labels=["reason"],
        )
        for reason in INVALID_REASONS:
            invalid.add_metric([reason], stats.invalid_by_reason.get(reason, 0))
        commands = CounterMetricFamily("edgefleet_commands", "Operator commands received.")
        commands.add_metric([], stats.commands)
        return [received, published, invalid, commands]

    def _durations(self) -> Iterable[Metric]:
        stats = self._orch.stats
        return [
            histogram(
                "edgefleet_reconcile_pass_seconds",
                "Wall time of one reconcile pass: decisions and the store transaction.",
                stats.pass_seconds,
            ),
            histogram(
                "edgefleet_placement_seconds",
                "Wall time of placement within a reconcile pass.",
                stats.placement_seconds,
            ),
            histogram(
                "edgefleet_deploy_to_running_seconds",
                "From an accepted deploy that changed an app to every desired replica running.",
                stats.deploy_to_running_seconds,
            ),
        ]

    def _service(self) -> Iterable[Metric]:
        orch = self._orch
        connected = GaugeMetricFamily(
            "edgefleet_broker_connected", "1 while the orchestrator's broker session is up."
        )
        connected.add_metric([], 1 if orch.session.connected.is_set() else 0)
        started = GaugeMetricFamily(
            "edgefleet_orchestrator_start_time_seconds", "When this orchestrator started (Unix)."
        )
        started.add_metric([], orch.started_at)
        passes = CounterMetricFamily("edgefleet_reconcile_passes", "Reconcile passes run.")
        passes.add_metric([], orch.stats.passes)
        return [connected, started, passes]

    def _rollouts_and_services(self) -> Iterable[Metric]:
        state = self._orch.state
        rollouts = GaugeMetricFamily(
            "edgefleet_rollouts",
            "Each app's current or last rollout, by phase.",
            labels=["phase"],
        )
        phases = [r.phase for r in state.rollouts.values()]
        for phase in ROLLOUT_PHASES:
            rollouts.add_metric([phase], phases.count(phase))  # type: ignore[arg-type]
        catalog = self._orch.services.published
        services = GaugeMetricFamily("edgefleet_services", "Services in the published catalog.")
        services.add_metric([], len(catalog))
        endpoints = GaugeMetricFamily(
            "edgefleet_service_endpoints", "Healthy endpoints over all published services."
        )
        endpoints.add_metric([], sum(len(entry.endpoints) for entry in catalog.values()))
        return [rollouts, services, endpoints]

    def _per_node(self) -> Iterable[Metric]:
        if self._per_node_limit <= 0:
            return []
        nodes = sorted(self._orch.state.registry.nodes.values(), key=lambda r: (r.site, r.node))
        suppressed = GaugeMetricFamily(
            "edgefleet_per_node_metrics_suppressed",
            "1 when the fleet has more nodes than --metrics-per-node-limit allows per-node series.",
        )
        if len(nodes) > self._per_node_limit:
            suppressed.add_metric([], 1)
            return [suppressed]
        suppressed.add_metric([], 0)
        labels = ["site", "node"]
        up = GaugeMetricFamily(
            "edgefleet_node_online", "1 while the node is online.", labels=labels
        )
        cpu = GaugeMetricFamily("edgefleet_node_cpu_ratio", "Node CPU use, 0-1.", labels=labels)
        mem = GaugeMetricFamily(
            "edgefleet_node_memory_ratio", "Node memory use, 0-1.", labels=labels
        )
        disk = GaugeMetricFamily("edgefleet_node_disk_ratio", "Node disk use, 0-1.", labels=labels)
        replicas = GaugeMetricFamily(
            "edgefleet_node_replicas", "Replicas assigned to the node.", labels=labels
        )
        assigned: dict[str, int] = {}
        for a in self._orch.state.assignments:
            assigned[a.node] = assigned.get(a.node, 0) + 1
        for r in nodes:
            key = [r.site, r.node]
            up.add_metric(key, 1 if r.state == "online" else 0)
            cpu.add_metric(key, ratio(r.telemetry.cpu_pct))
            mem.add_metric(key, ratio(r.telemetry.memory_pct))
            disk.add_metric(key, ratio(r.telemetry.disk_pct))
            replicas.add_metric(key, assigned.get(r.node, 0))
        return [suppressed, up, cpu, mem, disk, replicas]


def registry_for(orchestrator: Orchestrator, *, per_node_limit: int = 0) -> CollectorRegistry:
    """A registry of its own (not the process-global one): two orchestrators in one test
    process never see each other's series."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OrchestratorCollector(orchestrator, per_node_limit=per_node_limit))
    return registry
