"""The agent's Prometheus metrics, built at scrape time from the running :class:`Agent`.

Served by :func:`serve_metrics` on the loopback address of ``--metrics-addr`` (the settings
refuse any other), through :mod:`edgefleet_protocol.scrape`. Labels are closed sets
(workload states); no series per workload, so a gateway's series count is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, get_args

from edgefleet_protocol.node_messages import WorkloadState
from edgefleet_protocol.scrape import Address, MetricsServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from edgefleet_agent.service.agent import Agent

log = logging.getLogger("edgefleet.metrics")

WORKLOAD_STATES: tuple[str, ...] = get_args(WorkloadState)


class AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._errors = 0

    def collect(self) -> Iterator[Metric]:
        builders: list[Callable[[], Iterable[Metric]]] = [self._workloads, self._session]
        families: list[Metric] = []
        for build in builders:
            try:
                families.extend(build())
            except Exception:  # a metrics bug must never cost the scrape, let alone a loop
                self._errors += 1
                log.exception("metrics family %s failed", build.__name__)
        yield from families
        errors = CounterMetricFamily(
            "edgefleet_agent_metrics_errors",
            "Metric families left out of a scrape because building them failed.",
        )
        errors.add_metric([], self._errors)
        yield errors

    def _workloads(self) -> Iterable[Metric]:
        reports = self._agent.converger.reports()
        by_state = GaugeMetricFamily(
            "edgefleet_agent_workloads", "Workloads on this gateway, by state.", labels=["state"]
        )
        for state in WORKLOAD_STATES:
            by_state.add_metric([state], sum(1 for r in reports.values() if r.state == state))
        restarts = CounterMetricFamily(
            "edgefleet_agent_workload_restarts",
            "Restarts of the workloads this gateway runs now, added up.",
        )
        restarts.add_metric([], sum(r.restarts for r in reports.values()))
        generation = GaugeMetricFamily(
            "edgefleet_agent_desired_generation", "The desired-document generation applied."
        )
        generation.add_metric([], self._agent.converger.observed_generation)
        return [by_state, restarts, generation]

    def _session(self) -> Iterable[Metric]:
        agent = self._agent
        connected = GaugeMetricFamily(
            "edgefleet_agent_broker_connected", "1 while the agent's broker session is up."
        )
        connected.add_metric([], 1 if agent.session.connected.is_set() else 0)
        published = CounterMetricFamily(
            "edgefleet_agent_messages_published", "MQTT messages the broker took from the agent."
        )
        published.add_metric([], agent.session.stats.published)
        received = CounterMetricFamily(
            "edgefleet_agent_messages_received", "MQTT messages the agent received."
        )
        received.add_metric([], agent.session.stats.received)
        connects = CounterMetricFamily(
            "edgefleet_agent_broker_connects", "Successful connections to the broker."
        )
        connects.add_metric([], agent.session.stats.connects)
        started = GaugeMetricFamily(
            "edgefleet_agent_start_time_seconds", "When this agent started (Unix)."
        )
        started.add_metric([], agent.started_at)
        return [connected, published, received, connects, started]


def metrics_server(agent: Agent, address: Address) -> MetricsServer:
    """The agent's ``/metrics`` endpoint (not started), on a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    return MetricsServer(lambda: generate_latest(registry), CONTENT_TYPE_LATEST, address)
