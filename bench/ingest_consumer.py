"""The measured side of the ingest benchmark: bare subscribers, or the orchestrator.

``paho``: a plain paho-mqtt client (MQTT 3.1.1, its own network loop in this thread) whose
``on_message`` only counts — the most a Python MQTT client does here with no work at all.
``aiomqtt``, ``session311`` and ``session``: the asyncio layers the orchestrator reads
through (aiomqtt on MQTT 3.1.1, then our :class:`~edgefleet_protocol.session.Session` on
3.1.1 and on MQTT 5 as the orchestrator negotiates it), also only counting: they split the
gap between paho and the orchestrator into library, protocol and the orchestrator's own
work.

``orchestrator``: the real
:class:`~edgefleet_orchestrator.service.orchestrator.Orchestrator` in this process (as
tests/integration/test_orchestrator_service.py runs it), counting
``stats.messages``: messages fully handled (topic parsed, payload decoded and validated,
ingested into the registry, placement or status work triggered as it decides).

Either prints ``{"ready": true}`` once subscribed, then ``{"t": <monotonic>, "n": <count>}``
every ``--interval`` seconds until SIGTERM; the orchestrator adds its session's received
and dropped QoS 0 counts. ``--profile PATH`` (orchestrator only) samples it with
pyinstrument between SIGUSR1 and SIGUSR2 and writes the text profile there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Session
from paho.mqtt.enums import CallbackAPIVersion

from bench.orchestrator_profiled import ProfileWindow

KINDS = ("paho", "aiomqtt", "session311", "session", "orchestrator")


def _emit(body: dict[str, Any]) -> None:
    print(json.dumps(body), flush=True)


def run_paho(url: str, topic_filter: str, interval: float) -> None:
    settings = BrokerSettings.from_url(url)
    count = 0
    subscribed = False
    stop = False

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1

    def on_subscribe(*_: object) -> None:
        nonlocal subscribed
        subscribed = True

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic_filter, qos=0)

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{uuid.uuid4().hex[:6]}"
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect(settings.host, settings.port, keepalive=60)
    deadline = time.monotonic() + 10
    while not subscribed:
        client.loop(timeout=0.05)
        if time.monotonic() > deadline:
            raise SystemExit("ingest-consumer: paho did not subscribe within 10 s")
    _emit({"ready": True})
    next_sample = time.monotonic()
    while not stop:
        client.loop(timeout=0.01)
        now = time.monotonic()
        if now >= next_sample:
            _emit({"t": now, "n": count})
            next_sample = now + interval
    client.disconnect()


async def _sample_forever(count: list[int], interval: float) -> None:
    while True:
        _emit({"t": time.monotonic(), "n": count[0]})
        await asyncio.sleep(interval)


async def run_library(kind: str, url: str, topic_filter: str, interval: float) -> None:
    """``aiomqtt`` (MQTT 3.1.1, the library under our session) or ``session`` (our
    :class:`Session`, protocol negotiated as the orchestrator's): count, nothing else."""
    settings = BrokerSettings.from_url(url)
    count = [0]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    client_id = f"bench-{kind}-{uuid.uuid4().hex[:6]}"

    async def consume() -> None:
        if kind == "aiomqtt":
            async with aiomqtt.Client(settings.host, settings.port, identifier=client_id) as c:
                await c.subscribe(topic_filter, qos=0)
                _emit({"ready": True, "protocol": "3.1.1"})
                async for _ in c.messages:
                    count[0] += 1
        else:
            async with Session(settings, client_id=client_id, subscriptions=[topic_filter]) as s:
                if not await s.wait_connected(10):
                    raise SystemExit("ingest-consumer: the session cannot reach the broker")
                _emit({"ready": True, "protocol": s.stats.protocol})
                async for _ in s.messages():
                    count[0] += 1

    tasks = [asyncio.create_task(consume()), asyncio.create_task(_sample_forever(count, interval))]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_orchestrator(url: str, root: str, interval: float, profile: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="ingest-orch-") as data_dir:
        config = OrchestratorConfig(
            broker=BrokerSettings.from_url(url),
            data_dir=Path(data_dir),
            root=root,
            client_id=f"bench-orch-{uuid.uuid4().hex[:6]}",
            settle_s=0.2,
        )
        orch = Orchestrator(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        window = ProfileWindow(profile) if profile is not None else None
        if window is not None:
            loop.add_signal_handler(signal.SIGUSR1, window.start)
            loop.add_signal_handler(signal.SIGUSR2, window.stop)
        task = asyncio.create_task(orch.run(stop), name="ingest-orchestrator")
        if not await orch.session.wait_connected(10):
            raise SystemExit("ingest-consumer: the orchestrator cannot reach the broker")
        _emit({"ready": True, "protocol": orch.session.stats.protocol})
        while not stop.is_set():
            s = orch.session.stats
            _emit(
                {
                    "t": time.monotonic(),
                    "n": orch.stats.messages,
                    "received": s.received,
                    "dropped": s.dropped_qos0,
                    "passes": orch.stats.passes,
                }
            )
            await asyncio.sleep(interval)
        await task
        if window is not None:
            window.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ingest benchmark consumer")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    topic_filter = f"{args.root}/nodes/+/+/telemetry"
    if args.kind == "paho":
        run_paho(args.broker, topic_filter, args.interval)
    elif args.kind in ("aiomqtt", "session"):
        asyncio.run(run_library(args.kind, args.broker, topic_filter, args.interval))
    elif args.kind == "session311":  # the same Session, told to speak MQTT 3.1.1
        url = f"{args.broker}?protocol=3.1.1"
        asyncio.run(run_library("session", url, topic_filter, args.interval))
    else:
        asyncio.run(run_orchestrator(args.broker, args.root, args.interval, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
