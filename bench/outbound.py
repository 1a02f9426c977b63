"""Outbound: publishing N desired documents against what the broker needs to deliver them.

Issue #17 item 2: publishing 10,000 desired documents must not take longer than the broker
needs to deliver them. Same broker, same run, one ``mosquitto_sub`` subscribed (QoS 1) to
every node's desired topic, as the fleet's agents are; the phases alternate, each on a
fresh topic root:

* ``broker``: a raw-socket publisher (:mod:`bench.mqtt_wire`) writes all N QoS 1 retained
  PUBLISH packets, pre-encoded, pipelined, then reads the N PUBACKs: the least a client
  can do, so the time until the subscriber holds all N is the broker's own.
* ``session``: the orchestrator's path, :func:`~edgefleet_orchestrator.service.events.publish_all`
  of N :class:`~edgefleet_protocol.wire.Publication` through a
  :class:`~edgefleet_protocol.session.Session` on MQTT 5 (properties included).

Each phase reports ``published_s`` (until the publisher has every PUBACK) and
``delivered_s`` (until the subscriber has counted all N). Target: the session's
``delivered_s`` is at most 1.1 x the broker phase's in the same round (ratio, median of
the rounds).

    python -m bench.outbound [--documents 10000] [--rounds 3] [--bytes 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from edgefleet_orchestrator.service.events import publish_all
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

from bench import mqtt_wire as wire
from bench import stats
from bench.fleet_procs import BenchError, start_mosquitto

TARGET_RATIO = 1.1


class Subscriber:
    """``mosquitto_sub`` printing one byte per message; a thread counts them."""

    def __init__(self, url: str, topic: str) -> None:
        binary = shutil.which("mosquitto_sub")
        if binary is None:
            raise BenchError("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        args = [binary, "-h", host, "-p", port, "-t", topic, "-q", "1", "-N", "-F", "x"]
        self.count = 0
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.5)  # it cannot say when it subscribed

    def _read(self) -> None:
        out = self.process.stdout
        assert isinstance(out, io.BufferedReader)
        while chunk := out.read1(65536):
            self.count += len(chunk)

    def wait_for(self, n: int, timeout_s: float = 120.0) -> float:
        deadline = time.monotonic() + timeout_s
        while self.count < n:
            if time.monotonic() > deadline:
                raise BenchError(f"the subscriber got {self.count} of {n} messages")
            time.sleep(0.001)
        return time.monotonic()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._thread.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def documents(root: str, n: int, size: int) -> list[Publication]:
    body = json.dumps({"v": 1, "pad": "x" * max(0, size - 20)}).encode()
    return [
        Publication(f"{root}/nodes/site-{i % 10:03d}/gw-{i:05d}/desired", body, 1, True)
        for i in range(n)
    ]


def _phase(started: float, published: float, delivered: float) -> dict[str, float]:
    return {
        "published_s": round(published - started, 3),
        "delivered_s": round(delivered - started, 3),
    }


def raw_phase(url: str, pubs: list[Publication], sub: Subscriber) -> dict[str, float]:
    settings = BrokerSettings.from_url(url)
    packets = b"".join(
        wire.publish(p.topic, p.payload, qos=1, retain=True, packet_id=(i % 65535) + 1)
        for i, p in enumerate(pubs)
    )
    sock = socket.create_connection((settings.host, settings.port), timeout=30)
    sock.sendall(wire.connect(f"bench-raw-{uuid.uuid4().hex[:6]}"))
    reader = wire.FrameReader()
    while not reader.feed(sock.recv(4096)):
        pass
    before = sub.count
    started = time.monotonic()
    sender = threading.Thread(target=sock.sendall, args=(packets,))
    sender.start()
    acks = 0
    while acks < len(pubs):
        acks += sum(1 for f in reader.feed(sock.recv(65536)) if f.kind == wire.Packet.PUBACK)
    published = time.monotonic()
    sender.join()
    delivered = sub.wait_for(before + len(pubs))
    sock.sendall(wire.DISCONNECT)
    sock.close()
    return {
        "published_s": round(published - started, 3),
        "delivered_s": round(delivered - started, 3),
    }


async def session_phase(url: str, pubs: list[Publication], sub: Subscriber) -> dict[str, float]:
    settings = BrokerSettings.from_url(url)
    async with Session(settings, client_id=f"bench-out-{uuid.uuid4().hex[:6]}") as session:
        if not await session.wait_connected(10):
            raise BenchError("the session cannot reach the broker")
        before = sub.count
        started = time.monotonic()
        await publish_all(session, pubs)
        published = time.monotonic()
        if session.stats.published != len(pubs):
            raise BenchError(f"the session published {session.stats.published} of {len(pubs)}")
    delivered = sub.wait_for(before + len(pubs))
    return {
        "published_s": round(published - started, 3),
        "delivered_s": round(delivered - started, 3),
    }


def measure(documents_n: int = 10_000, rounds: int = 3, size: int = 1500) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefleet-outbound-") as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        sub = Subscriber(broker.url, "bench/out/+/nodes/+/+/desired")
        runs: list[dict[str, Any]] = []
        try:
            for r in range(rounds):
                raw = raw_phase(broker.url, documents(f"bench/out/r{r}", documents_n, size), sub)
                pubs = documents(f"bench/out/s{r}", documents_n, size)
                ses = asyncio.run(session_phase(broker.url, pubs, sub))
                ratio = round(ses["delivered_s"] / raw["delivered_s"], 3)
                runs.append({"broker": raw, "session": ses, "ratio": ratio})
        finally:
            sub.stop()
            broker.stop()
    ratio = statistics.median(r["ratio"] for r in runs)
    return {
        "documents": documents_n,
        "bytes": size,
        "rounds": runs,
        "ratio_session_to_broker": round(ratio, 3),
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def scenario(documents: int = 10_000, rounds: int = 3, size: int = 1500) -> dict[str, Any]:
    """:func:`measure` with the summary rows of ``make bench``."""
    result = measure(documents, rounds, size)

    def median(phase: str, figure: str) -> float:
        return round(statistics.median(r[phase][figure] for r in result["rounds"]), 3)

    n = f"{documents:,} desired documents"
    result["rows"] = [
        stats.row(f"{n}, raw pipelined publisher (the broker's time)", "delivered_s",
                  median("broker", "delivered_s"), key=True),
        stats.row(f"{n}, orchestrator session (publish_many)", "delivered_s",
                  median("session", "delivered_s"), key=True),
        stats.row("session / broker (median of rounds)", "ratio",
                  result["ratio_session_to_broker"], "<=", TARGET_RATIO),
    ]  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="outbound publish benchmark")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=1500)
    args = parser.parse_args()
    print(json.dumps(measure(args.documents, args.rounds, args.bytes), indent=2))


if __name__ == "__main__":
    main()
