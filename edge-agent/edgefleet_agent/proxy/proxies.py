"""The set of local proxies an agent runs, kept in line with what its workloads use.

Called by the agent service: :meth:`Proxies.catalog` with every retained
``services/{service}`` message for a used service (and at start with the copies in the
local store), :meth:`Proxies.reconcile` after every converge pass with the services the
desired workloads use, :meth:`Proxies.env_for` when a workload is started (its
``EDGEFLEET_SERVICE_*`` variables), :meth:`Proxies.report` for ``reported.proxies`` and
:meth:`Proxies.metrics` for telemetry.

Invariants: a (service, port name) keeps its proxy port for as long as the local store
does, so a restarted workload finds the proxy where its environment says; a port is given
only if it can be bound when it is given. One proxy that cannot listen is reported
``failed`` (and an event is raised once per failure) while every other keeps working; it
is tried again at every reconcile. A used service whose catalog was never seen has no
proxy yet: its consumers wait (their start is retried) rather than start with a guessed
environment.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from edgefleet_protocol import ServiceEndpoints, ServiceProxy, WorkloadSpec

from edgefleet_agent.proxy.balancer import Balancer, Counters, rates
from edgefleet_agent.proxy.listener import Listener
from edgefleet_agent.store import LocalStore

log = logging.getLogger("edgefleet.agent.proxy")

LOOPBACK = "127.0.0.1"
OnFailure = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    site: str
    region: str | None
    port_range: tuple[int, int] = (17000, 17999)
    docker_host: str | None = None
    """Where containers reach the host (the ``docker0`` address); listeners bind there too."""
    connect_timeout_s: float = 2.0


class CatalogUnknown(Exception):
    """A workload uses a service whose catalog this agent has never received."""


def env_name(service: str) -> str:
    return service.upper().replace("-", "_")


class Proxies:
    def __init__(
        self,
        config: ProxyConfig,
        *,
        store: LocalStore,
        on_failure: OnFailure,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._store = store
        self._on_failure = on_failure
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self.entries: dict[str, ServiceEndpoints] = store.services()
        self.balancers: dict[str, Balancer] = {}
        self.listeners: dict[tuple[str, str], Listener] = {}
        self.failures: dict[str, str] = {}
        self._ports = store.proxy_ports()
        self._last_counters: dict[str, Counters] = {}
        self._last_metrics_at = monotonic()
        for entry in self.entries.values():
            self._balancer(entry.service).update(entry)

    @property
    def hosts(self) -> tuple[str, ...]:
        docker = self.config.docker_host
        return (LOOPBACK,) if docker is None else (LOOPBACK, docker)

    # -- catalogs ---------------------------------------------------------------------------

    def catalog(self, service: str, entry: ServiceEndpoints | None) -> None:
        """Adopt a catalog message (``None``: the retained message was cleared — the
        service is gone, so its proxy has nowhere to send)."""
        if entry is None:
            entry = ServiceEndpoints(service=service, app=service, endpoints=[], updated_at=0)
            if service in self.entries:
                entry = self.entries[service].model_copy(update={"endpoints": []})
        if not self._balancer(service).update(entry):
            return  # an older revision (a replay): keep what we have
        self.entries[service] = entry
        try:
            self._store.save_service(entry)
        except OSError as exc:  # the proxy keeps working from memory
            log.warning("could not store the catalog of %s: %s", service, exc)

    def _balancer(self, service: str) -> Balancer:
        found = self.balancers.get(service)
        if found is None:
            found = self.balancers[service] = Balancer(
                site=self.config.site, region=self.config.region, rng=self._rng
            )
        return found

    # -- listeners --------------------------------------------------------------------------

    async def reconcile(self, used: Iterable[str]) -> None:
        """Listen for every port of every used service with a known catalog; stop the
        rest. A listener that cannot start is reported, the others go on."""
        wanted = {
            (service, name)
            for service in set(used)
            if service in self.entries
            for name in self._port_names(service)
        }
        for key in [k for k in self.listeners if k not in wanted]:
            await self.listeners.pop(key).close()
        failed: dict[str, str] = {}
        for service, name in sorted(wanted - set(self.listeners)):
            port = self._port_for(service, name)
            if port is None:
                failed[service] = f"no free proxy port in {self._range_text()} for port {name}"
                continue
            listener = Listener(
                self.balancers[service],
                port_name=name,
                hosts=self.hosts,
                port=port,
                connect_timeout_s=self.config.connect_timeout_s,
                monotonic=self._monotonic,
            )
            try:
                await listener.start()
            except OSError as exc:
                failed[service] = f"cannot listen on port {port} ({name}): {exc.strerror or exc}"
                continue
            self.listeners[(service, name)] = listener
        news = {s: m for s, m in failed.items() if self.failures.get(s) != m}
        self.failures = failed
        for service, message in sorted(news.items()):
            await self._on_failure(service, message)

    async def close(self) -> None:
        for listener in self.listeners.values():
            await listener.close()
        self.listeners = {}

    def _port_names(self, service: str) -> list[str]:
        entry = self.entries[service]
        if entry.ports:
            return list(entry.ports)
        return list(entry.endpoints[0].ports) if entry.endpoints else []

    def _port_for(self, service: str, name: str) -> int | None:
        """The proxy port of (service, name): the one it was given, else the lowest free
        one in the range (bindable now), remembered in the local store."""
        given = self._ports.get((service, name))
        if given is not None:
            return given
        low, high = self.config.port_range
        taken = set(self._ports.values())
        for port in range(low, high + 1):
            if port not in taken and _bindable(self.hosts, port):
                self._ports[(service, name)] = port
                try:
                    self._store.set_proxy_port(service, name, port)
                except OSError as exc:
                    log.warning("could not store proxy port %d: %s", port, exc)
                return port
        return None

    def _range_text(self) -> str:
        low, high = self.config.port_range
        return f"{low}-{high}"

    # -- what workloads and reports see -----------------------------------------------------

    def env_for(self, spec: WorkloadSpec) -> dict[str, str]:
        """The ``EDGEFLEET_SERVICE_*`` and ``EDGEFLEET_MQTT_GROUP`` variables for a replica
        of ``spec``. Raises :class:`CatalogUnknown` for a used service never seen."""
        env: dict[str, str] = {}
        if spec.service is not None and spec.service.mqtt_group is not None:
            env["EDGEFLEET_MQTT_GROUP"] = spec.service.mqtt_group
        host = self.config.docker_host if spec.runtime == "docker" else LOOPBACK
        for service in spec.uses:
            if service not in self.entries:
                raise CatalogUnknown(service)
            names = self._port_names(service)
            ports = [(n, p) for n in names if (p := self._port_for(service, n)) is not None]
            prefix = f"EDGEFLEET_SERVICE_{env_name(service)}"
            env[f"{prefix}_HOST"] = host or LOOPBACK
            if ports:
                env[f"{prefix}_PORT"] = str(ports[0][1])
            for name, port in ports:
                env[f"{prefix}_PORT_{env_name(name)}"] = str(port)
        return env

    def report(self) -> dict[str, ServiceProxy]:
        out: dict[str, ServiceProxy] = {}
        for service in sorted({s for s, _ in self.listeners} | set(self.failures)):
            names = self._port_names(service) if service in self.entries else []
            ports = {n: p for n in names if (p := self._ports.get((service, n))) is not None}
            first = next(iter(ports.values()), None)
            known = len(self.entries[service].endpoints) if service in self.entries else 0
            message = self.failures.get(service, "")
            out[service] = ServiceProxy(
                state="failed" if message else "listening",
                host=LOOPBACK,
                port=first,
                ports=ports,
                endpoints=known,
                message=message[:2048],
            )
        return out

    def metrics(self) -> dict[str, float]:
        """Per used service, rates since the last call (node telemetry metrics)."""
        now = self._monotonic()
        seconds = now - self._last_metrics_at
        self._last_metrics_at = now
        out: dict[str, float] = {}
        for service in sorted({s for s, _ in self.listeners}):
            balancer = self.balancers[service]
            before = self._last_counters.get(service, Counters())
            after = balancer.counters.copy()
            self._last_counters[service] = after
            out.update(
                rates(before, after, seconds, active=balancer.active, prefix=f"proxy.{service}")
            )
        return out


def _bindable(hosts: Iterable[str], port: int) -> bool:
    for host in hosts:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True
