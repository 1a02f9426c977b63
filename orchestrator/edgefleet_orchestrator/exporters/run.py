"""Run the orchestrator service with the exporters its command line asked for
(Prometheus metrics, Home Assistant discovery).

Called by ``edgefleet orchestrator run``. The metrics server is bound before the service
starts, so a taken port is a clear error at start, not a surprise later; it stops after
the service has published its ``offline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

from edgefleet_protocol.scrape import Address, MetricsServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgefleet_orchestrator.exporters.homeassistant import HomeAssistantExporter
from edgefleet_orchestrator.exporters.metrics import registry_for
from edgefleet_orchestrator.service import collector
from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator


@dataclass(frozen=True, slots=True)
class ExporterOptions:
    metrics: Address | None = None
    per_node_limit: int = 0
    """Per-node series while the fleet has at most this many nodes (0: never)."""
    homeassistant_prefix: str | None = None
    """Publish Home Assistant discovery under this prefix (``None``: off)."""


async def run_until_signalled(config: OrchestratorConfig, options: ExporterOptions) -> None:
    """Serve until SIGTERM or SIGINT. ``OSError`` from binding the metrics port propagates."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    orchestrator = Orchestrator(config)
    collector.tune()  # after the store is loaded: what it holds is frozen with the rest
    server: MetricsServer | None = None
    if options.metrics is not None:
        registry = registry_for(orchestrator, per_node_limit=options.per_node_limit)
        server = MetricsServer(
            lambda: generate_latest(registry), CONTENT_TYPE_LATEST, options.metrics
        )
        try:
            await server.start()
        except OSError:
            orchestrator.store.close()
            raise
    extras: list[asyncio.Task[None]] = []
    if options.homeassistant_prefix is not None:
        exporter = HomeAssistantExporter(orchestrator, prefix=options.homeassistant_prefix)
        extras.append(asyncio.create_task(exporter.run(), name="homeassistant-discovery"))
    try:
        await orchestrator.run(stop)
    finally:
        for task in extras:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if server is not None:
            await server.close()
