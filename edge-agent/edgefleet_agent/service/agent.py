"""The agent service: one MQTT session, a local store, runtimes, and named loops.

``Agent.run(stop)`` is the whole life of the agent process (the CLI calls it). Tasks:

* ``converge`` — level-triggered passes (:mod:`.converge`), woken by a new desired document, a
  health verdict or a retry due, else every ``reconcile_interval_s``; the first runs from the
  local store at once, before and without any broker.
* ``inbound`` — desired documents through :mod:`.intake` (trust checks, policy, admission);
  logs requests, each served by a task of :mod:`.logs`.
* ``health`` — HTTP/TCP/exec probes (:mod:`health_watch`); ``telemetry`` — sample, decide by
  deadband/heartbeat, publish at QoS 0.
* ``capabilities`` — re-checked every ``capabilities_interval_s``, published on change.
* ``supervise`` — only when a runtime has a ``supervise()`` tick (its restart policy).

Invariants: every loop contains its own failures (logged, retried next tick), so a bug in
one never stops the others; presence, capabilities, ``reported`` and compliance are
republished on every (re)connect, so nothing published while disconnected needs
replaying; events raised while disconnected wait in a bounded queue. A clean stop
publishes ``offline`` (the same session as the will) and leaves every workload running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefleet_protocol import (
    Capabilities,
    NodeStatus,
    OrchestratorStatus,
    ProtocolError,
    Reported,
    TopicKind,
    Topics,
    decode,
)
from edgefleet_protocol.node_messages import NodeState
from edgefleet_protocol.session import Publication, Session
from edgefleet_protocol.topics import NODE_KINDS

from edgefleet_agent import __version__
from edgefleet_agent.core.backoff import BackoffPolicy
from edgefleet_agent.core.presence import hello_due
from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.security.context import Security
from edgefleet_agent.service.capabilities import (
    HostFacts,
    answering_runtimes,
    build_capabilities,
    gather_host_facts,
)
from edgefleet_agent.service.collector import Collector, Target
from edgefleet_agent.service.compliance_sender import CompliancePublisher
from edgefleet_agent.service.converge import Converger
from edgefleet_agent.service.discovery import ServiceLink, WithProxyMetrics
from edgefleet_agent.service.health_watch import HealthWatch
from edgefleet_agent.service.intake import DesiredIntake
from edgefleet_agent.service.logs import LogsServer
from edgefleet_agent.service.loops import end_if_cancelled, forever, woken
from edgefleet_agent.service.metrics_inbox import MetricsInbox
from edgefleet_agent.service.outbox import EventOutbox
from edgefleet_agent.service.prober import ProbeResult
from edgefleet_agent.service.telemetry_sender import Sampler, TelemetrySender
from edgefleet_agent.settings import AgentSettings
from edgefleet_agent.store import LocalStore

if TYPE_CHECKING:
    from edgefleet_protocol.profiles import Profile

log = logging.getLogger("edgefleet.agent")

STOP_PUBLISH_TIMEOUT_S = 2.0
SUPERVISE_FALLBACK_S = 1.0


class _Stopping(Exception):
    """Raised inside the task group to end every loop when the stop event fires."""


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        store: LocalStore,
        runtimes: dict[str, Runtime],
        profile: Profile | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        backoff_policy: BackoffPolicy | None = None,
        sampler: Sampler | None = None,
        host_facts: Callable[[Path], HostFacts] = gather_host_facts,
        security: Security | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtimes = runtimes
        self.profile = profile
        self._clock = clock
        self._monotonic = monotonic
        self._host_facts = host_facts
        topics = Topics(settings.root)
        self._topics = {k: topics.node(settings.site, settings.node, k) for k in NODE_KINDS}
        self.session_no = store.next_session()
        self.events = EventOutbox(
            node=settings.node,
            site=settings.site,
            clock=clock,
            send=lambda event: self._publish(TopicKind.NODE_EVENTS, event),
            connected=lambda: self.session.connected.is_set(),
        )
        self.started_at = clock()
        self.metrics = MetricsInbox(settings.state_dir / "metrics")
        self.metrics.directory.mkdir(parents=True, exist_ok=True)
        self.health = HealthWatch(clock=clock, notify=self._health_changed)
        self.discovery = ServiceLink(
            settings, store=store, runtimes=runtimes, events=self.events.emit, host_facts=host_facts
        )
        self.converger = Converger(
            runtimes=runtimes,
            store=store,
            health=self.health,
            events=self.events.emit,
            metrics_path=lambda name: str(self.metrics.path_for(name)),
            reconcile_interval_s=settings.reconcile_interval_s,
            clock=clock,
            policy=backoff_policy,
            service_env=self.discovery.env_for,
        )
        self.intake = DesiredIntake(
            settings,
            runtimes=runtimes,
            store=store,
            converger=self.converger,
            events=self.events,
            security=security or Security(),
        )
        self.compliance = CompliancePublisher(settings, intake=self.intake,
            converger=self.converger, publish=self._publish, clock=clock)  # fmt: skip
        targets = {n: Target(t.host, t.port) for n, t in settings.probes.items()}
        collector: Sampler = sampler or Collector(
            state_dir=settings.state_dir,
            targets=targets,
            probe_interval_s=settings.probe_interval_s,
            inbox=self.metrics,
            monotonic=monotonic,
            broker_rtt=lambda: self.session.stats.rtt_ms,
        )
        self._wake = asyncio.Event()
        self._health_wake = asyncio.Event()
        self._last_reported: dict[str, Any] | None = None
        self._last_capabilities: Capabilities | None = None
        self._orchestrator_topic = Topics(settings.root).orchestrator_status()
        self.session = Session(
            settings.broker,
            client_id=f"edgefleet-agent-{settings.site}-{settings.node}",
            will=self._status_publication("offline", self.started_at),
            subscriptions=[
                self._topics[TopicKind.NODE_DESIRED],
                self._orchestrator_topic,
                self._topics[TopicKind.NODE_LOGS],
            ],
            on_connect=self._on_connect,
        )
        self.logs = LogsServer(
            settings, session=self.session, runtimes=runtimes, workloads=self.converger.runtimes_of
        )
        self.telemetry = TelemetrySender(
            settings,
            sampler=WithProxyMetrics(collector, self.discovery.proxies),
            session=self.session,
            topic=self._topics[TopicKind.NODE_TELEMETRY],
            clock=clock,
            monotonic=monotonic,
        )
        self._orchestrator_since: float | None = None
        self._rng = random.Random()
        self._hello: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then publish ``offline`` and return; workloads stay."""
        desired = self.converger.desired
        log.info(
            "agent %s/%s starting: session %d, runtimes %s, stored desired generation %s",
            self.settings.site,
            self.settings.node,
            self.session_no,
            ", ".join(self.runtimes),
            desired.generation if desired else "none",
        )
        if self.store.recovered_from:
            self.events.queue("error", "store-recovered", self.store.recovered_from)
        self.session.start()
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "converge": self._converge_loop,
            "inbound": self._inbound_loop,
            "health": self._health_loop,
            "telemetry": lambda: forever("telemetry", self.telemetry_once),
            "capabilities": lambda: forever("capabilities", self._capabilities_tick),
        }
        if any(hasattr(rt, "supervise") for rt in self.runtimes.values()):
            loops["supervise"] = lambda: forever("supervise", self._supervise_tick)
        try:
            async with asyncio.TaskGroup() as group:
                for name, loop in loops.items():
                    group.create_task(loop(), name=f"agent-{name}")
                group.create_task(self._until(stop), name="agent-stop")
        except* _Stopping:
            pass
        finally:
            await self._shutdown()

    async def _until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        raise _Stopping

    async def _shutdown(self) -> None:
        await self.logs.close()
        offline = self._status_publication("offline", self._clock())
        with contextlib.suppress(Exception):
            await self.session.close([offline], timeout_s=STOP_PUBLISH_TIMEOUT_S)
        for runtime in self.runtimes.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_PUBLISH_TIMEOUT_S):
                    await runtime.close()
        with contextlib.suppress(Exception):
            await self.discovery.proxies.close()
        self.store.close()
        log.info("agent stopped (session %d); workloads left running", self.session_no)

    # -- presence, events, retained state -------------------------------------------------

    def _status_publication(self, state: NodeState, since: float) -> Publication:
        status = NodeStatus(
            node=self.settings.node,
            site=self.settings.site,
            state=state,
            session=self.session_no,
            since=since,
            agent_version=__version__,
        )
        return Publication.of(TopicKind.NODE_STATUS, self._topics[TopicKind.NODE_STATUS], status)

    async def _on_connect(self) -> None:
        """Republish everything retained (level-triggered), then what queued while away."""
        await self.session.publish(self._status_publication("online", self.started_at))
        await self._publish_capabilities(force=True)
        await self._publish_reported(force=True)
        self.telemetry.reset()  # receivers may have lost our view: next one is full
        await self.events.flush()

    async def _publish(self, kind: TopicKind, model: Any) -> bool:
        return await self.session.publish_model(kind, self._topics[kind], model)

    def reported(self) -> Reported:
        reported = Reported(
            node=self.settings.node,
            site=self.settings.site,
            observed_generation=self.converger.observed_generation,
            session=self.session_no,
            ts=self._clock(),
            workloads=self.converger.reports(),
        )
        return self.discovery.decorate(reported, self.converger.desired)

    async def _publish_reported(self, *, force: bool = False) -> None:
        """Publish ``reported`` when anything but its timestamp changed (or when forced)."""
        reported = self.reported()
        key = reported.model_dump(exclude={"ts"})
        if (force or key != self._last_reported) and await self._publish(
            TopicKind.NODE_REPORTED, reported
        ):
            self._last_reported = key
        await self.compliance.publish(force=force)  # the same moments suit it

    async def capabilities(self) -> Capabilities:
        # At least one runtime: with none answering right now, list the configured ones
        # (their workloads then report why they are pending).
        s, available = self.settings, await answering_runtimes(self.runtimes)
        return build_capabilities(
            node=s.node, site=s.site, facts=self._host_facts(s.state_dir), profile=self.profile,
            runtimes=available or list(self.runtimes), labels=s.labels, sensors=s.sensors,
            region=s.region, addresses=s.addresses, simulated_hardware=s.runtime == "simulated",
            sealing_key=self.intake.security.sealing_public,
        )  # fmt: skip

    async def _publish_capabilities(self, *, force: bool = False) -> None:
        capabilities = await self.capabilities()
        if not force and capabilities == self._last_capabilities:
            return
        if await self._publish(TopicKind.NODE_CAPABILITIES, capabilities):
            self._last_capabilities = capabilities

    # -- desired documents ----------------------------------------------------------------

    async def _inbound_loop(self) -> None:
        async for message in self.session.messages():
            if message.topic == self._orchestrator_topic:
                self._on_orchestrator_status(message.payload)
                continue
            if message.topic == self._topics[TopicKind.NODE_LOGS]:
                self.logs.request(message)
                continue
            if (service := self.discovery.service_of(message.topic)) is not None:
                if self.discovery.on_catalog(service, message.payload):
                    self._wake.set()  # a first catalog: its consumers and proxy can start
                continue
            if message.topic != self._topics[TopicKind.NODE_DESIRED]:
                continue
            try:
                await self.on_desired(message.payload)
            except Exception:
                log.exception("handling a desired document failed")
            end_if_cancelled()

    def _on_orchestrator_status(self, payload: bytes) -> None:
        """Say hello to a newly started orchestrator (see :func:`hello_due`), after a random
        0-1 s so a large fleet does not answer at once."""
        try:
            status = decode(OrchestratorStatus, payload)
        except ProtocolError:
            return
        busy = self._hello is not None and not self._hello.done()
        due, self._orchestrator_since = hello_due(status, self._orchestrator_since, busy=busy)
        if due:
            self._hello = asyncio.create_task(self._say_hello(), name="agent-hello")

    async def _say_hello(self) -> None:
        await asyncio.sleep(self._rng.uniform(0.0, 1.0))
        await self.session.publish(self._status_publication("online", self.started_at))
        self.telemetry.reset()
        await self.telemetry_once()

    async def on_desired(self, payload: bytes) -> None:
        """Admit one desired document (see :mod:`edgefleet_agent.service.intake`)."""
        if await self.intake.on_desired(payload):
            self._wake.set()
        await self.compliance.publish()

    # -- the loops ------------------------------------------------------------------------

    async def _converge_loop(self) -> None:
        await woken("converge", self._wake, self.converge_once)

    async def converge_once(self) -> float:
        delay = await self.converger.once(self._publish_reported)
        await self.discovery.after_converge(self.converger.desired, self.session)
        self._health_wake.set()
        await self.converger.bounded(self._publish_reported(), slot="reported")
        return delay

    async def _health_loop(self) -> None:
        async def tick() -> float:
            c = self.converger
            delay, changed = await self.health.once(
                c.owned, spec_for=c.spec_for, runtimes=self.runtimes, unavailable=c.unavailable
            )
            if changed:
                self._wake.set()
            return delay

        await woken("health", self._health_wake, tick)

    async def _health_changed(self, name: str, status: str, result: ProbeResult) -> None:
        if status == "unhealthy":
            await self.events.emit("warning", "workload-unhealthy", f"{name}: {result.output}",
                              workload=name)  # fmt: skip
        elif status == "healthy":
            self.converger.healthy_again(name)

    async def telemetry_once(self) -> float:
        await self.events.flush_summaries()  # a suppressed flood is reported once it ends
        c = self.converger
        usable = [rt for name, rt in self.runtimes.items() if name not in c.unavailable]
        running = [o.name for o in c.owned if o.observed.state == "running"]
        return await self.telemetry.once(usable, running)

    async def _capabilities_tick(self) -> float:
        await asyncio.sleep(self.settings.capabilities_interval_s)
        await self._publish_capabilities()
        return 0.0

    async def _supervise_tick(self) -> float:
        interval = SUPERVISE_FALLBACK_S
        for runtime in self.runtimes.values():
            supervise = getattr(runtime, "supervise", None)
            if supervise is not None:
                await supervise()
                interval = min(interval, getattr(runtime, "supervise_interval_s", interval))
        return float(interval)
