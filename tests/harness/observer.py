"""A wire-level observer for conformance tests: a plain paho MQTT 5 client that records
every message with its retain flag, QoS and MQTT 5 properties.

Why not :class:`edgefleet_protocol.session.Session`: the code under test must not also be
the ruler. This client subscribes with *retain as published*, so a live message shows the
retain flag its publisher set (a broker otherwise clears it on live delivery), and it can
publish with a Response Topic, Correlation Data or the retain flag, as any MQTT 5 client
could. It runs paho's network thread; tests wait on it with :meth:`Observer.wait_for`,
a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


@dataclass(frozen=True)
class Seen:
    """One message as the observer received it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    response_topic: str | None
    correlation_data: bytes | None
    at: float  # time.monotonic() of arrival

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.payload)
        return body


class Observer:
    """Records everything under ``filters`` (retain as published, QoS 1)."""

    def __init__(self, url: str, filters: list[str]) -> None:
        parsed = urlparse(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 1883
        self._filters = filters
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"observer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Observer:
        self.client.connect(self._host, self._port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self._subscribed.is_set():
            if time.monotonic() > deadline:
                raise AssertionError("observer: no SUBACK within 10 s")
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            return
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        client.subscribe([(f, options) for f in self._filters])

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        seen = Seen(
            topic=msg.topic,
            payload=bytes(msg.payload),
            retain=bool(msg.retain),
            qos=msg.qos,
            response_topic=getattr(props, "ResponseTopic", None),
            correlation_data=getattr(props, "CorrelationData", None),
            at=time.monotonic(),
        )
        with self._lock:
            self._seen.append(seen)

    # -- reading --------------------------------------------------------------------------

    def seen(self, topic: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if topic is None or s.topic == topic]

    def mark(self) -> int:
        """A position; ``after=`` it means "only what arrives from now on"."""
        with self._lock:
            return len(self._seen)

    def since(self, mark: int) -> list[Seen]:
        with self._lock:
            return self._seen[mark:]

    async def wait_for(
        self,
        match: Callable[[Seen], bool],
        *,
        after: int = 0,
        timeout_s: float = 15.0,
        what: str = "a message",
    ) -> Seen:
        """The first message from ``after`` on that ``match``es, waiting up to the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            for s in self.since(after):
                if match(s):
                    return s
            if time.monotonic() > deadline:
                topics = sorted({s.topic for s in self.since(after)})
                raise AssertionError(
                    f"timed out after {timeout_s} s waiting for {what}; saw {topics}"
                )
            await asyncio.sleep(0.02)

    async def wait_json(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        **kwargs: Any,
    ) -> Seen:
        def ok(s: Seen) -> bool:
            if s.topic != topic or not s.payload:
                return False
            try:
                return match(s.json())
            except (ValueError, KeyError, TypeError):
                return False

        return await self.wait_for(ok, what=kwargs.pop("what", f"a message on {topic}"), **kwargs)

    # -- writing --------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        props = None
        if response_topic is not None or correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation_data is not None:
                props.CorrelationData = correlation_data
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(timeout=10)


async def retained_now(url: str, topic_filter: str, settle_s: float = 1.0) -> list[Seen]:
    """What a late subscriber gets at once on ``topic_filter``: the retained messages.

    A broker sends retained messages right after the SUBACK; a marker published after
    subscribing (and so delivered after them, in order) says when they are all in, so this
    waits for a condition, not a guess. ``settle_s`` only bounds the marker's wait.
    """
    marker_topic = f"observer-marker/{uuid.uuid4().hex}"
    async with Observer(url, [topic_filter, marker_topic]) as obs:
        obs.publish(marker_topic, b"x")
        await obs.wait_for(lambda s: s.topic == marker_topic, timeout_s=10 + settle_s)
        return [s for s in obs.seen() if s.topic != marker_topic and s.retain]
