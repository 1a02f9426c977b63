"""Sampling for telemetry: node load, per-workload usage, latency probes, custom metrics.

The I/O half of telemetry; :mod:`edgefleet_agent.core.telemetry` decides what is worth sending.
Latency probes are TCP connects (the time to a completed handshake is one network round
trip), to the broker (``latency_ms.broker``) and to configured targets
(``latency_ms.<name>``). They run every ``probe_interval_s`` rather than every sample, and
their last values are reused in between, so probing costs the network almost nothing.
A target that does not answer is left out of the sample (and logged once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
from edgefleet_protocol import WorkloadUsage

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.core.telemetry import Sample
from edgefleet_agent.service.metrics_inbox import MetricsInbox

log = logging.getLogger("edgefleet.agent.collector")

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int


async def tcp_connect_ms(host: str, port: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> float:
    """Milliseconds until a TCP handshake completes; raises ``OSError``/``TimeoutError``."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout_s):
        _, writer = await asyncio.open_connection(host, port)
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return elapsed


class Collector:
    def __init__(
        self,
        *,
        state_dir: Path,
        targets: Mapping[str, Target],
        probe_interval_s: float,
        inbox: MetricsInbox,
        monotonic: Callable[[], float] = time.monotonic,
        broker_rtt: Callable[[], float | None] | None = None,
    ) -> None:
        self._state_dir = state_dir
        self._targets = dict(targets)
        self._probe_interval_s = probe_interval_s
        self._inbox = inbox
        self._monotonic = monotonic
        # The broker's latency comes from the MQTT session's own PUBACK round trips: a TCP
        # probe per interval cost the broker three log lines and ~12 B/s (issue #13).
        self._broker_rtt = broker_rtt
        self._latency: dict[str, float] = {}
        self._next_probe_at = 0.0
        self._down: set[str] = set()
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement

    async def sample(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> Sample:
        if self._monotonic() >= self._next_probe_at:
            self._next_probe_at = self._monotonic() + self._probe_interval_s
            await self._probe_all()
        usage: dict[str, WorkloadUsage] = {}
        for runtime in runtimes:
            try:
                usage.update(await runtime.usage())
            except Exception as exc:  # a runtime hiccup costs this sample its usage, no more
                log.debug("usage from %s failed: %s", runtime.name, exc)
        metrics = self._inbox.read(running)
        for name, values in metrics.items():
            base = usage.get(name, WorkloadUsage())
            usage[name] = base.model_copy(update={"metrics": values})
        return Sample(
            cpu_pct=psutil.cpu_percent(interval=None),
            memory_pct=psutil.virtual_memory().percent,
            disk_pct=self._disk_pct(),
            load1=os.getloadavg()[0],
            latency_ms=self._latencies(),
            workloads=usage,
        )

    def _latencies(self) -> dict[str, float]:
        latency = dict(self._latency)
        rtt = self._broker_rtt() if self._broker_rtt is not None else None
        if rtt is not None:
            latency["broker"] = rtt
        return latency

    def _disk_pct(self) -> float | None:
        try:
            return psutil.disk_usage(str(self._state_dir)).percent
        except OSError:
            return None

    async def _probe_all(self) -> None:
        names = list(self._targets)
        results = await asyncio.gather(
            *(tcp_connect_ms(t.host, t.port) for t in self._targets.values()),
            return_exceptions=True,
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, float):
                self._latency[name] = result
                self._down.discard(name)
            else:
                self._latency.pop(name, None)
                if name not in self._down:
                    log.info("latency probe %s failed: %s", name, result)
                    self._down.add(name)
