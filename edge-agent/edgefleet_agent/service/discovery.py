"""Service discovery in the agent: the address replicas are reported at, the catalogs of
the services local workloads use, and the local proxies.

The agent service calls :class:`ServiceLink` at four points: :meth:`on_catalog` for every
``services/{service}`` message (it subscribes to the services its desired workloads use,
after each converge pass, in :meth:`after_converge`, which also reconciles the proxies);
:meth:`env_for` when a workload starts; :meth:`decorate` on every ``reported`` document
(per-replica ``address``/``ports`` and the ``proxies``); and :class:`WithProxyMetrics`
wraps the telemetry sampler so each used service's proxy counters become node metrics.

Advertised address: the first configured ``--address``, else the first detected
non-loopback address (the same list capabilities carries), else ``127.0.0.1``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import psutil
from edgefleet_protocol import (
    Desired,
    DesiredWorkload,
    ProtocolError,
    Reported,
    ServiceEndpoints,
    TopicKind,
    Topics,
    WorkloadSpec,
    decode,
)
from edgefleet_protocol.events import PROXY_FAILED
from edgefleet_protocol.session import Session

from edgefleet_agent.core.runtime import Runtime, TransientRuntimeError
from edgefleet_agent.core.telemetry import Sample
from edgefleet_agent.proxy.proxies import CatalogUnknown, Proxies, ProxyConfig
from edgefleet_agent.service.capabilities import HostFacts
from edgefleet_agent.service.telemetry_sender import Sampler
from edgefleet_agent.settings import AgentSettings
from edgefleet_agent.store import LocalStore

EventSink = Callable[..., Awaitable[None]]


def docker_bridge_address() -> str | None:
    """The IPv4 address of ``docker0``: where containers on the default bridge reach
    the host (their default gateway)."""
    for address in psutil.net_if_addrs().get("docker0", []):
        if address.family == socket.AF_INET:
            return str(address.address)
    return None


class ServiceLink:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        store: LocalStore,
        runtimes: Mapping[str, Runtime],
        events: EventSink,
        host_facts: Callable[[Path], HostFacts],
    ) -> None:
        self._topics = Topics(settings.root)
        detected = () if settings.addresses else host_facts(settings.state_dir).addresses
        self.address = next(iter(settings.addresses or detected), "127.0.0.1")
        docker_host = settings.proxy_docker_host
        if docker_host is None and "docker" in runtimes:
            docker_host = docker_bridge_address()
        self._events = events
        self.proxies = Proxies(
            ProxyConfig(
                site=settings.site,
                region=settings.region,
                port_range=settings.proxy_ports,
                docker_host=docker_host,
            ),
            store=store,
            on_failure=self._proxy_failed,
        )
        self._subscribed: set[str] = set()

    async def _proxy_failed(self, service: str, reason: str) -> None:
        message = f"local proxy for service {service} failed: {reason}"
        await self._events("error", PROXY_FAILED, message, service=service, reason=reason)

    def service_of(self, topic: str) -> str | None:
        """The service a ``services/{service}`` topic is about, else ``None``."""
        try:
            parsed = self._topics.parse(topic)
        except ProtocolError:
            return None
        return parsed.service if parsed.kind is TopicKind.SERVICE else None

    def on_catalog(self, service: str, payload: bytes) -> bool:
        """Adopt one catalog message (a malformed one is dropped: the last good stays).
        True when the service was not known before (waiting consumers can start)."""
        known = service in self.proxies.entries
        if not payload:
            self.proxies.catalog(service, None)
            return not known
        try:
            entry = decode(ServiceEndpoints, payload)
        except ProtocolError:
            return False
        if entry.service != service:
            return False
        self.proxies.catalog(service, entry)
        return not known

    async def after_converge(self, desired: Desired | None, session: Session) -> None:
        used = used_services(desired.workloads if desired else ())
        for service in sorted(used - self._subscribed):
            await session.subscribe(self._topics.service(service))
            self._subscribed.add(service)
        await self.proxies.reconcile(used)

    def env_for(self, spec: WorkloadSpec) -> dict[str, str]:
        """A serving replica learns the address it is advertised at
        (``EDGEFLEET_ADDRESS``, to bind to); consumers their proxies."""
        base = {"EDGEFLEET_ADDRESS": self.address} if spec.service is not None else {}
        try:
            return {**base, **self.proxies.env_for(spec)}
        except CatalogUnknown as exc:
            raise TransientRuntimeError(
                f"waiting for the catalog of service {exc.args[0]} (its proxy port is "
                "given once the service is known)"
            ) from None

    def decorate(self, reported: Reported, desired: Desired | None) -> Reported:
        """``reported`` with each serving replica's address and ports, and the proxies."""
        workloads = dict(reported.workloads)
        for w in desired.workloads if desired else ():
            binding = w.spec.service
            report = workloads.get(w.name)
            if binding is not None and binding.ports and report is not None:
                update = {"address": self.address, "ports": dict(binding.ports)}
                workloads[w.name] = report.model_copy(update=update)
        return reported.model_copy(
            update={"workloads": workloads, "proxies": self.proxies.report()}
        )


def used_services(workloads: Iterable[DesiredWorkload]) -> set[str]:
    return {service for w in workloads for service in w.spec.uses}


class WithProxyMetrics:
    """A sampler that adds the proxies' per-service metrics to another's node metrics."""

    def __init__(self, inner: Sampler, proxies: Proxies) -> None:
        self.inner = inner
        self._proxies = proxies

    async def sample(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> Sample:
        sample = await self.inner.sample(runtimes, running)
        extra = self._proxies.metrics()
        if not extra:
            return sample
        return replace(sample, metrics={**sample.metrics, **extra})
