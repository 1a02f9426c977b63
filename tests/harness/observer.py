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

    # -- lifecycle (async for asyncio tests, plain for process-level ones) ----------------

    def start(self) -> Observer:
        self.client.connect(self._host, self._port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("observer: no SUBACK within 10 s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def __aenter__(self) -> Observer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __enter__(self) -> Observer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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

    def _first(self, match: Callable[[Seen], bool], after: int) -> Seen | None:
        for s in self.since(after):
            if match(s):
                return s
        return None

    def _timed_out(self, timeout_s: float, what: str, after: int) -> AssertionError:
        topics = sorted({s.topic for s in self.since(after)})
        return AssertionError(f"timed out after {timeout_s} s waiting for {what}; saw {topics}")

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
        while (found := self._first(match, after)) is None:
            if time.monotonic() > deadline:
                raise self._timed_out(timeout_s, what, after)
            await asyncio.sleep(0.02)
        return found

    def expect(
        self,
        match: Callable[[Seen], bool],
        *,
        after: int = 0,
        timeout_s: float = 20.0,
        what: str = "a message",
    ) -> Seen:
        """:meth:`wait_for` for plain (non-asyncio) tests."""
        deadline = time.monotonic() + timeout_s
        while (found := self._first(match, after)) is None:
            if time.monotonic() > deadline:
                raise self._timed_out(timeout_s, what, after)
            time.sleep(0.02)
        return found

    async def wait_json(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        **kwargs: Any,
    ) -> Seen:
        what = kwargs.pop("what", f"a message on {topic}")
        return await self.wait_for(json_match(topic, match), what=what, **kwargs)

    def expect_json(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        **kwargs: Any,
    ) -> Seen:
        what = kwargs.pop("what", f"a message on {topic}")
        return self.expect(json_match(topic, match), what=what, **kwargs)

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


def json_match(topic: str, match: Callable[[dict[str, Any]], bool]) -> Callable[[Seen], bool]:
    """A message on ``topic`` with a JSON body that ``match``es (a broken body never does)."""

    def ok(s: Seen) -> bool:
        if s.topic != topic or not s.payload:
            return False
        try:
            return match(s.json())
        except (ValueError, KeyError, TypeError, IndexError):
            return False

    return ok


def retained_now(url: str, topic_filter: str) -> list[Seen]:
    """What a late subscriber gets at once on ``topic_filter``: the retained messages.

    A broker sends retained messages right after the SUBACK; a marker published after
    subscribing (and so delivered after them, in order) says when they are all in, so this
    waits for a condition, not a guess.
    """
    marker_topic = f"observer-marker/{uuid.uuid4().hex}"
    with Observer(url, [topic_filter, marker_topic]) as obs:
        obs.publish(marker_topic, b"x")
        obs.expect(lambda s: s.topic == marker_topic, what="the marker")
        return [s for s in obs.seen() if s.topic != marker_topic and s.retain]
