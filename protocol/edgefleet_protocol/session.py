"""One long-lived MQTT session per process, on aiomqtt.

Owns the connection deliberately (STYLE.md §11): a will set at connect, subscriptions
restored after every reconnect, reconnect forever with capped jittered backoff, a bounded
inbound queue, publish helpers that apply each topic's QoS/retain rule, and a clean
shutdown that publishes the caller's final messages (``offline``) before disconnecting.

Invariants:

* At most one aiomqtt client exists at a time; ``connected`` is set exactly while it is up
  and subscribed.
* ``on_connect`` runs after every successful (re)connect and subscription, as its own task;
  owners use it to republish their retained state (level-triggered, so nothing published
  while disconnected needs replaying).
* :meth:`publish` never waits for a connection: while disconnected it returns ``False``.
* Reconnects follow :class:`~edgefleet_protocol.wire.ReconnectSchedule` (one backoff per outage).
* In ``auto`` protocol mode every connection sequence tries MQTT 5 first; 3.1.1 follows at
  once only when a reachable broker refused or dropped the v5 CONNECT (an unreachable
  broker says nothing about its protocol, and once v5 worked only a CONNACK refusal
  counts), so an agent never stays on 3.1.1 because of an outage.
* Logs: one WARNING when an outage begins and one INFO when it ends; each failed retry
  in between, and paho's own connection-error lines, only at DEBUG.
* Inbound: :mod:`.mqtt_inbound` reads the socket into an :class:`.inbox.Inbox` of
  ``queue_size``; when full, QoS 0 (telemetry, superseded anyway) is dropped and counted,
  QoS 1 queued with its PUBACK held back until there is room (broker in-flight bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel

from edgefleet_protocol import mqtt_inbound
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.codec import encode
from edgefleet_protocol.inbox import Inbox
from edgefleet_protocol.mqtt_client import (
    AUTH_REFUSALS,
    MAX_INFLIGHT,
    ProtocolVersion,
    connack_code,
    forget,
    make_client,
    raise_if_cancelled,
)
from edgefleet_protocol.mqtt_inbound import acknowledge
from edgefleet_protocol.mqtt_outbound import NOT_SENT, Outbound
from edgefleet_protocol.session_stats import SessionStats
from edgefleet_protocol.topics import REPLY_RULE, TopicKind
from edgefleet_protocol.wire import Backoff, InboundMessage, Publication, ReconnectSchedule

__all__ = [
    "MAX_INFLIGHT",
    "Backoff",
    "InboundMessage",
    "OnConnect",
    "ProtocolVersion",
    "Publication",
    "Session",
    "SessionStats",
]

log = logging.getLogger("edgefleet.session")
_paho_log = logging.getLogger("edgefleet.session.paho")
# paho reports every failed socket read and connect at ERROR; the session says the same
# once per outage at WARNING, so paho's lines are only wanted when debugging the session.
_paho_log.addFilter(lambda record: log.isEnabledFor(logging.DEBUG))


OnConnect = Callable[[], Awaitable[None]]


class Session:
    """A reconnecting MQTT session. Use as ``async with Session(...) as session:``."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        client_id: str,
        will: Publication | None = None,
        subscriptions: Sequence[str] = (),
        on_connect: OnConnect | None = None,
        queue_size: int = 10_000,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.will = will
        self._subscriptions = list(dict.fromkeys(subscriptions))
        self._on_connect = on_connect
        self._inbox = Inbox(queue_size)
        self._backoff = backoff or Backoff()
        self._schedule = ReconnectSchedule(self._backoff)
        self._rng = rng or random.Random()
        self._client: aiomqtt.Client | None = None
        self._outbound: Outbound | None = None
        self._runner: asyncio.Task[None] | None = None
        self._hook: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self.connected = asyncio.Event()
        self.stats = SessionStats()
        self.last_refusal: tuple[str, str] | None = None  # (topic, reason), MQTT 5 only
        self.on_published: Callable[[Publication], None] | None = None
        """Told of every message the broker took (a metrics counter); must not raise."""
        self._fallback_to_311 = settings.protocol == "3.1.1"
        self._just_fell_back = False
        self._v5_worked = False

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"mqtt-session:{self.client_id}")

    async def close(self, final: Sequence[Publication] = (), *, timeout_s: float = 3.0) -> None:
        """Publish ``final`` (if connected), then disconnect cleanly and stop reconnecting.

        A clean DISCONNECT means the broker drops the will, so callers pass their own
        ``offline`` status here.
        """
        client = self._client
        if client is not None and self.connected.is_set() and final:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    for pub in final:
                        await self._publish_on(pub)
        self._closing.set()
        if self._hook is not None:
            self._hook.cancel()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._hook is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._hook
        self.connected.clear()

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            return False
        return True

    # -- subscriptions and inbound --------------------------------------------------------

    async def subscribe(self, topic_filter: str) -> None:
        """Add a subscription: applied now if connected, and after every reconnect."""
        if topic_filter in self._subscriptions:
            return
        self._subscriptions.append(topic_filter)
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                await client.subscribe(topic_filter, qos=1)

    async def messages(self) -> AsyncIterator[InboundMessage]:
        """Inbound messages, handed out only while connected (retained ones arrive during
        the SUBSCRIBEs; a handler's answer must be publishable). A burst: :meth:`batch`."""
        while True:
            message = await self._inbox.get()
            await self.connected.wait()
            yield message

    async def batch(self, limit: int = 4096) -> list[InboundMessage]:
        """Every inbound message waiting (at most ``limit``), once one is; as :meth:`messages`."""
        messages = await self._inbox.batch(limit)
        await self.connected.wait()
        return messages

    def pending(self) -> int:
        return len(self._inbox)

    # -- publishing -----------------------------------------------------------------------

    @property
    def protocol(self) -> ProtocolVersion | None:
        return self.stats.protocol if self.connected.is_set() else None

    def _publish_refused(self, topic: str, reason: str) -> None:
        self.last_refusal = (topic, reason)
        self.stats.publishes_refused += 1

    async def publish(self, pub: Publication) -> bool:
        """Send one message; ``False`` if not connected or the broker did not take it."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        try:
            await self._publish_on(pub)
        except (aiomqtt.MqttError, RuntimeError) as exc:
            # RuntimeError: paho's "Message publish failed: The client is not currently
            # connected" when the connection drops between our check and the send (the
            # broker stopped); it is a failed publish like any other, never a crash.
            self.stats.publish_failures += 1
            log.debug("publish to %s failed: %s", pub.topic, exc)
            return False
        return True

    async def publish_model(self, kind: TopicKind, topic: str, model: BaseModel) -> bool:
        """Publish a payload model with the QoS and retain rule of its topic kind."""
        pub = Publication.of(kind, topic, model)
        if kind is TopicKind.NODE_TELEMETRY:
            # Telemetry is stale within a minute; MQTT 5 brokers may drop it unsent.
            pub = Publication(pub.topic, pub.payload, pub.qos, pub.retain, expiry_s=60)
        return await self.publish(pub)

    async def reply(
        self, topic: str, model: BaseModel, *, correlation_data: bytes | None = None
    ) -> bool:
        return await self.publish(
            Publication(
                topic=topic,
                payload=encode(model),
                qos=REPLY_RULE.qos,
                retain=REPLY_RULE.retain,
                correlation_data=correlation_data,
            )
        )

    async def publish_many(self, pubs: Sequence[Publication], window: int = MAX_INFLIGHT) -> int:
        """Publish ``pubs`` in order, ``window`` awaiting their PUBACK at most (the fan-out of
        desired documents). Returns how many the broker took; the rest count as failures."""
        outbound = self._outbound
        if outbound is None or not self.connected.is_set():
            return 0
        results = await outbound.publish(pubs, window)
        taken, refusal = self.stats.count_batch(pubs, results, self.on_published)
        self.last_refusal = refusal or self.last_refusal
        return taken

    async def clear_retained(self, topic: str) -> bool:
        """Delete a retained message (an empty retained payload)."""
        return await self.publish(Publication(topic=topic, payload=b"", qos=1, retain=True))

    async def _publish_on(self, pub: Publication) -> None:
        started = time.perf_counter()  # not loop.time(): uvloop's ticks in whole milliseconds
        outbound = self._outbound  # no aiomqtt/paho publish: see mqtt_outbound's docstring
        code = NOT_SENT
        if outbound is not None:
            code = await outbound.publish_one(pub, window=MAX_INFLIGHT)
        if code == NOT_SENT:
            raise aiomqtt.MqttError(f"the publish to {pub.topic} was not acknowledged")
        if code:
            self._publish_refused(pub.topic, str(ReasonCode(PacketTypes.PUBACK, identifier=code)))
            raise aiomqtt.MqttError(f"the broker refused the publish to {pub.topic}")
        if pub.qos >= 1:
            self.stats.rtt_ms = round((time.perf_counter() - started) * 1000, 3)
        self.stats.published += 1
        if self.on_published is not None:
            self.on_published(pub)

    # -- the connection loop --------------------------------------------------------------

    def _connect_timeout(self, protocol: ProtocolVersion) -> float:
        probing = self.settings.protocol == "auto" and protocol == "5" and not self._v5_worked
        return 3.0 if probing else 15.0

    def _next_protocol(self) -> ProtocolVersion:
        return "3.1.1" if self._fallback_to_311 else "5"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():
            protocol = self._next_protocol()
            client = make_client(self.settings, self.client_id, self.will, protocol)
            outbound = Outbound(client, v5=protocol == "5")
            mqtt_inbound.install(client, self._sink(client), v5=protocol == "5", outbound=outbound)
            try:
                async with contextlib.AsyncExitStack() as stack:
                    # A 3.1.1-only broker may hang on a v5 CONNECT instead of refusing it;
                    # in auto mode a short first attempt keeps the fallback fast.
                    async with asyncio.timeout(self._connect_timeout(protocol)):
                        await stack.enter_async_context(client)
                    self._client, self._outbound = client, outbound
                    self.stats.protocol = protocol
                    self.stats.connects += 1
                    self.stats.refused = None
                    self._v5_worked = self._v5_worked or protocol == "5"
                    for topic_filter in self._subscriptions:
                        await client.subscribe(topic_filter, qos=1)
                    raise_if_cancelled()
                    self.connected.set()
                    lasted = self._schedule.connected(loop.time())
                    if self.settings.protocol == "auto":
                        self._fallback_to_311 = False  # the next sequence probes v5 again
                    if lasted is None or self.stats.connects == 1:
                        log.info("connected to %s (MQTT %s)", self.settings.redacted(), protocol)
                    else:
                        log.info(
                            "reconnected to %s (MQTT %s) after %.1f s",
                            self.settings.redacted(),
                            protocol,
                            lasted,
                        )
                    if self._on_connect is not None:
                        self._hook = asyncio.create_task(
                            self._run_hook(self._on_connect), name="mqtt-on-connect"
                        )
                    await mqtt_inbound.until_disconnected(client)
            except (aiomqtt.MqttError, TimeoutError) as exc:
                self.stats.last_error = str(exc) or type(exc).__name__
                if connack_code(exc) in AUTH_REFUSALS:
                    self.stats.refused = self.stats.last_error
                was_up = self.connected.is_set()
                if not was_up:
                    self._maybe_fall_back(protocol, exc)
                if self._schedule.lost(loop.time()) and not self._closing.is_set():
                    self.stats.outages += 1
                    what = "lost" if was_up else "cannot be reached"
                    log.warning(
                        "MQTT connection to %s %s: %s; reconnecting with backoff",
                        self.settings.redacted(),
                        what,
                        exc,
                    )
                else:
                    log.debug("MQTT attempt to %s failed: %s", self.settings.redacted(), exc)
            finally:
                self.connected.clear()
                self._client, self._outbound = None, None
                outbound.lost()
                forget(client)
                if self._hook is not None:
                    self._hook.cancel()
            if self._closing.is_set():
                break
            fell_back, self._just_fell_back = self._just_fell_back, False
            delay = 0.0 if fell_back else self._schedule.next_delay(self._rng, loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closing.wait()

    def _maybe_fall_back(self, protocol: ProtocolVersion, exc: Exception) -> None:
        """``auto`` mode: a failed MQTT 5 connect is followed at once by a 3.1.1 attempt (an
        embedded 3.1.1-only broker refuses or drops a v5 CONNECT); a failed 3.1.1 attempt
        returns to 5 after the usual backoff.

        Not every failure is a verdict on the protocol: a broker that cannot be reached
        (refused, reset, no route) never makes the session fall back, and once v5 has
        worked with this broker only a CONNACK refusal does — an outage must not leave an
        agent on 3.1.1 when the broker returns (issue #13)."""
        if self.settings.protocol != "auto":
            return
        unreachable = isinstance(exc.__context__, OSError) and not isinstance(exc, TimeoutError)
        refused = isinstance(exc, aiomqtt.MqttCodeError)
        if protocol == "5" and (unreachable or (self._v5_worked and not refused)):
            return
        if protocol == "5":
            self._fallback_to_311 = True
            self._just_fell_back = True
        else:
            self._fallback_to_311 = False

    async def _run_hook(self, hook: OnConnect) -> None:
        try:
            await hook()
        except asyncio.CancelledError:
            raise
        except Exception:  # one failing hook must not take the session down
            log.exception("on_connect hook failed")

    def _sink(self, client: aiomqtt.Client) -> mqtt_inbound.Sink:
        def sink(message: InboundMessage, mid: int) -> bool:  # the reader's; see Inbox
            self.stats.received += 1
            ack = partial(acknowledge, client, mid) if mid else None
            offered = self._inbox.offer(message, ack)
            self.stats.dropped_qos0 += offered == "dropped"
            return offered != "deferred"

        return sink
