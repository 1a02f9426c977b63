"""The agent service: one MQTT session, a local store, runtimes, and named loops.

``Agent.run(stop)`` is the whole life of the agent process (the CLI calls it). Named tasks
in one TaskGroup:

* ``converge`` — level-triggered passes (:mod:`edgefleet_agent.converge`), woken by a new
  desired document, a health verdict or a retry coming due, else every
  ``reconcile_interval_s``. The first pass runs from the local store at once, before and
  without any broker.
* ``inbound`` — desired documents from the broker, through :func:`admission.admit`.
* ``health`` — HTTP/TCP/exec probes of running workloads (:mod:`health_watch`).
* ``telemetry`` — sample, decide by deadband/heartbeat, publish at QoS 0.
* ``capabilities`` — re-checked every ``capabilities_interval_s``, published on change.
* ``supervise`` — only when a runtime has a ``supervise()`` tick (its restart policy).

Invariants: every loop contains its own failures (logged, retried next tick), so a bug in
one never stops the others; presence, capabilities and ``reported`` are republished on
every (re)connect, so nothing published while disconnected needs replaying; events raised
while disconnected wait in a bounded queue. A clean stop publishes ``offline`` (the same
session as the will) and leaves every workload running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from edgefleet_protocol import (
    Capabilities,
    Event,
    NodeStatus,
    OrchestratorStatus,
    ProtocolError,
    Reported,
    TopicKind,
    Topics,
    decode,
)
from edgefleet_protocol.node_messages import Level, NodeState
from edgefleet_protocol.session import Publication, Session

from edgefleet_agent import __version__
from edgefleet_agent.admission import Accept, Reject, Stale, Unchanged, admit
from edgefleet_agent.backoff import BackoffPolicy
from edgefleet_agent.capabilities import HostFacts, build_capabilities, gather_host_facts
from edgefleet_agent.collector import Collector, Target
from edgefleet_agent.converge import Converger
from edgefleet_agent.health_watch import HealthWatch
from edgefleet_agent.metrics_inbox import MetricsInbox
from edgefleet_agent.prober import ProbeResult
from edgefleet_agent.runtimes.base import Runtime
from edgefleet_agent.settings import AgentSettings
from edgefleet_agent.store import LocalStore
from edgefleet_agent.telemetry import Sample, SentState, compact_json, decide, to_telemetry

if TYPE_CHECKING:
    from edgefleet_protocol.profiles import Profile

log = logging.getLogger("edgefleet.agent")

LOOP_ERROR_PAUSE_S = 5.0
MAX_QUEUED_EVENTS = 100
STOP_PUBLISH_TIMEOUT_S = 2.0
SUPERVISE_FALLBACK_S = 1.0


class Sampler(Protocol):
    """Where telemetry samples come from: the host's :class:`Collector`, or the fleet
    simulator's model of a device (many simulated gateways share one real host)."""

    async def sample(self, runtimes: Iterable[Runtime], running: Iterable[str]) -> Sample: ...


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtimes = runtimes
        self.profile = profile
        self._clock = clock
        self._monotonic = monotonic
        self._host_facts = host_facts
        topics = Topics(settings.root)
        self._topics = {
            kind: topics.node(settings.site, settings.node, kind)
            for kind in (
                TopicKind.NODE_STATUS,
                TopicKind.NODE_CAPABILITIES,
                TopicKind.NODE_TELEMETRY,
                TopicKind.NODE_DESIRED,
                TopicKind.NODE_REPORTED,
                TopicKind.NODE_EVENTS,
            )
        }
        self.session_no = store.next_session()
        self.started_at = clock()
        self.metrics = MetricsInbox(settings.state_dir / "metrics")
        self.metrics.directory.mkdir(parents=True, exist_ok=True)
        self.health = HealthWatch(clock=clock, notify=self._health_changed)
        self.converger = Converger(
            runtimes=runtimes,
            store=store,
            health=self.health,
            events=self._event,
            metrics_path=lambda name: str(self.metrics.path_for(name)),
            reconcile_interval_s=settings.reconcile_interval_s,
            clock=clock,
            policy=backoff_policy,
        )
        targets = {"broker": Target(settings.broker.host, settings.broker.port)}
        targets.update({n: Target(t.host, t.port) for n, t in settings.probes.items()})
        self.collector: Sampler = sampler or Collector(
            state_dir=settings.state_dir,
            targets=targets,
            probe_interval_s=settings.probe_interval_s,
            inbox=self.metrics,
            monotonic=monotonic,
        )
        self._wake = asyncio.Event()
        self._health_wake = asyncio.Event()
        self._events: deque[Event] = deque(maxlen=MAX_QUEUED_EVENTS)
        self._last_reported: dict[str, Any] | None = None
        self._last_capabilities: Capabilities | None = None
        self._telemetry = SentState()
        self._orchestrator_topic = Topics(settings.root).orchestrator_status()
        self.session = Session(
            settings.broker,
            client_id=f"edgefleet-agent-{settings.site}-{settings.node}",
            will=self._status_publication("offline", self.started_at),
            subscriptions=[self._topics[TopicKind.NODE_DESIRED], self._orchestrator_topic],
            on_connect=self._on_connect,
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
            self._queue_event("error", "store-recovered", self.store.recovered_from)
        self.session.start()
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "converge": self._converge_loop,
            "inbound": self._inbound_loop,
            "health": self._health_loop,
            "telemetry": lambda: self._forever("telemetry", self.telemetry_once),
            "capabilities": lambda: self._forever("capabilities", self._capabilities_tick),
        }
        if any(hasattr(rt, "supervise") for rt in self.runtimes.values()):
            loops["supervise"] = lambda: self._forever("supervise", self._supervise_tick)
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
        offline = self._status_publication("offline", self._clock())
        with contextlib.suppress(Exception):
            await self.session.close([offline], timeout_s=STOP_PUBLISH_TIMEOUT_S)
        for runtime in self.runtimes.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_PUBLISH_TIMEOUT_S):
                    await runtime.close()
        self.store.close()
        log.info("agent stopped (session %d); workloads left running", self.session_no)

    async def _forever(self, name: str, tick: Callable[[], Awaitable[float]]) -> None:
        """Run ``tick`` forever; it returns how long to wait. An error costs one pause."""
        while True:
            try:
                delay = await tick()
            except Exception:
                log.exception("%s loop failed; retrying in %g s", name, LOOP_ERROR_PAUSE_S)
                delay = LOOP_ERROR_PAUSE_S
            _end_if_cancelled()
            await asyncio.sleep(delay)

    async def _woken(
        self, name: str, wake: asyncio.Event, tick: Callable[[], Awaitable[float]]
    ) -> None:
        """Like :meth:`_forever`, but ``wake`` cuts the wait short."""
        while True:
            wake.clear()
            try:
                delay = await tick()
            except Exception:
                log.exception("%s pass failed; retrying in %g s", name, LOOP_ERROR_PAUSE_S)
                delay = LOOP_ERROR_PAUSE_S
            _end_if_cancelled()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

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
        self._telemetry = SentState()  # receivers may have lost our view: next one is full
        while self._events:
            if not await self._publish(TopicKind.NODE_EVENTS, self._events[0]):
                break
            self._events.popleft()

    async def _publish(self, kind: TopicKind, model: Any) -> bool:
        return await self.session.publish_model(kind, self._topics[kind], model)

    def _queue_event(self, level: Level, kind: str, message: str, **details: object) -> Event:
        event = Event(
            ts=self._clock(),
            level=level,
            kind=kind,
            message=message[:4096],
            node=self.settings.node,
            site=self.settings.site,
            details=details,
        )
        self._events.append(event)
        return event

    async def _event(self, level: Level, kind: str, message: str, **details: object) -> None:
        """Publish an event now, or keep it (bounded) until the next connect."""
        log.log(logging.WARNING if level in ("warning", "error") else logging.INFO,
                "%s: %s", kind, message)  # fmt: skip
        event = self._queue_event(level, kind, message, **details)
        if self.session.connected.is_set() and await self._publish(TopicKind.NODE_EVENTS, event):
            with contextlib.suppress(ValueError):
                self._events.remove(event)

    def reported(self) -> Reported:
        return Reported(
            node=self.settings.node,
            site=self.settings.site,
            observed_generation=self.converger.observed_generation,
            session=self.session_no,
            ts=self._clock(),
            workloads=self.converger.reports(),
        )

    async def _publish_reported(self, *, force: bool = False) -> None:
        """Publish ``reported`` when anything but its timestamp changed (or when forced)."""
        reported = self.reported()
        key = reported.model_dump(exclude={"ts"})
        if not force and key == self._last_reported:
            return
        if await self._publish(TopicKind.NODE_REPORTED, reported):
            self._last_reported = key

    async def capabilities(self) -> Capabilities:
        available = [name for name, rt in self.runtimes.items() if await _answers(rt)]
        s = self.settings
        return build_capabilities(
            node=s.node,
            site=s.site,
            facts=self._host_facts(s.state_dir),
            profile=self.profile,
            # Capabilities need one runtime at least; with none answering right now, list the
            # configured ones (their workloads then report why they are pending).
            runtimes=available or list(self.runtimes),
            labels=s.labels,
            sensors=s.sensors,
            region=s.region,
            addresses=s.addresses,
            simulated_hardware=s.runtime == "simulated",
        )

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
            if message.topic != self._topics[TopicKind.NODE_DESIRED]:
                continue
            try:
                await self.on_desired(message.payload)
            except Exception:
                log.exception("handling a desired document failed")
            _end_if_cancelled()

    def _on_orchestrator_status(self, payload: bytes) -> None:
        """A newly started orchestrator knows nothing live about this node (telemetry is not
        retained, and a retained ``online`` proves nothing). When ``orchestrator/status``
        turns ``online`` with a new ``since``, say hello: a live status and a full
        telemetry message, after a random 0-1 s so a large fleet does not answer at once."""
        try:
            status = decode(OrchestratorStatus, payload)
        except ProtocolError:
            return
        first = self._orchestrator_since is None
        if status.state != "online" or status.since == self._orchestrator_since:
            return
        self._orchestrator_since = status.since
        if first or (self._hello is not None and not self._hello.done()):
            return  # on (re)connect, _on_connect already republishes everything
        self._hello = asyncio.create_task(self._say_hello(), name="agent-hello")

    async def _say_hello(self) -> None:
        await asyncio.sleep(self._rng.uniform(0.0, 1.0))
        await self.session.publish(self._status_publication("online", self.started_at))
        self._telemetry = SentState()
        await self.telemetry_once()

    async def on_desired(self, payload: bytes) -> None:
        """Admit one desired document; an accepted one is persisted before converging."""
        held = self.converger.desired
        s = self.settings
        verdict = admit(
            payload,
            node=s.node,
            site=s.site,
            runtimes=self.runtimes,
            current_generation=held.generation if held else None,
            max_bytes=s.max_payload_bytes,
        )
        match verdict:
            case Reject(field=field, reason=reason):
                message = (
                    f"desired document rejected, workloads left as they are: {field}: {reason}"
                )
                await self._event(
                    "warning", "desired-rejected", message, field=field, reason=reason
                )
            case Stale(generation=generation, current=current):
                message = f"ignored desired generation {generation}: already at {current}"
                await self._event("warning", "desired-stale", message, generation=generation,
                                  current=current)  # fmt: skip
            case Unchanged(generation=generation):
                log.debug("desired generation %d unchanged", generation)
            case Accept(desired=desired):
                problem = self.converger.accept(desired)
                if problem is not None:
                    failed = f"could not persist generation {desired.generation}: {problem}"
                    await self._event("error", "store-write-failed", failed)
                await self._event("info", "desired-accepted",
                                  f"accepted desired generation {desired.generation} with "
                                  f"{len(desired.workloads)} workload(s)",
                                  generation=desired.generation)  # fmt: skip
                self._wake.set()
            case _:
                assert_never(verdict)

    # -- the loops ------------------------------------------------------------------------

    async def _converge_loop(self) -> None:
        await self._woken("converge", self._wake, self.converge_once)

    async def converge_once(self) -> float:
        delay = await self.converger.once(self._publish_reported)
        self._health_wake.set()
        await self._publish_reported()
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

        await self._woken("health", self._health_wake, tick)

    async def _health_changed(self, name: str, status: str, result: ProbeResult) -> None:
        if status == "unhealthy":
            await self._event("warning", "workload-unhealthy", f"{name}: {result.output}",
                              workload=name)  # fmt: skip
        elif status == "healthy":
            self.converger.healthy_again(name)

    async def telemetry_once(self) -> float:
        c = self.converger
        usable = [rt for name, rt in self.runtimes.items() if name not in c.unavailable]
        running = [o.name for o in c.owned if o.observed.state == "running"]
        sample = await self.collector.sample(usable, running)
        decision, after = decide(
            sample,
            self._telemetry,
            now=self._monotonic(),
            heartbeat_s=self.settings.heartbeat_s,
            bands=self.settings.deadbands,
        )
        if decision is None:
            self._telemetry = after
        else:
            message = to_telemetry(
                decision, node=self.settings.node, site=self.settings.site, ts=self._clock()
            )
            topic = self._topics[TopicKind.NODE_TELEMETRY]
            pub = Publication(topic, compact_json(message), qos=0, retain=False, expiry_s=60)
            if await self.session.publish(pub):
                self._telemetry = after  # unsent deltas stay news for the next tick
        return self.settings.sample_interval_s

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


def _end_if_cancelled() -> None:
    """End a loop whose task was asked to stop even if the request got lost on the way.

    Python 3.11's ``asyncio.wait_for`` (used inside aiomqtt's publish) swallows a
    cancellation that arrives just as its future completes; the loop would then sleep and
    go round forever, and ``Agent.run`` would never return. Seen with thousands of agents
    stopping at once in the fleet simulator."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _answers(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(5.0):
            return await runtime.available()
    except Exception:
        return False
