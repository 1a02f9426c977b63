"""Telemetry load for the ingest benchmark: valid Telemetry payloads for many nodes, QoS 0.

One process, one raw MQTT connection, pre-encoded PUBLISH packets (:mod:`bench.mqtt_wire`)
written in batches: the publisher must outrun every consumer it is measuring, on a machine
whose other core runs the broker. ``announce`` publishes every node's retained ``online``
status and capabilities, so that the orchestrator then ingests telemetry for known, online
nodes — its steady state. ``load`` publishes telemetry round-robin over the nodes, each
node cycling through a few payload variants (CPU, memory and load move;
the latency probe stays within its deadband, as it does between real probes).

    python -m bench.ingest_publisher --broker mqtt://127.0.0.1:1883 --root bench/x --nodes 1000

then reads commands on stdin, one per line, and answers each with a JSON line
``{"sent": N, "seconds": S}`` when done: ``announce``, or ``load RATE SECONDS`` (rate 0 =
as fast as the socket takes it). One long-lived process for every phase of a consumer's
measurement: no interpreter start-up between them.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

from edgefleet_protocol import Capabilities, NodeStatus, Telemetry, Topics, WorkloadUsage, encode
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.node_messages import NetworkInfo

from bench import mqtt_wire as wire
from bench.lite_fleet import fleet_specs

VARIANTS = 4
TICK_S = 0.005  # paced mode writes a slice of packets this often


def announce_packets(root: str, nodes: int, sites: int) -> list[bytes]:
    """Retained ``online`` status and capabilities for every node (QoS 0: fire and forget)."""
    topics = Topics(root)
    packets = []
    for spec in fleet_specs(nodes, sites):
        status = NodeStatus(node=spec.node, site=spec.site, state="online", session=1, since=0)
        caps = Capabilities(
            node=spec.node,
            site=spec.site,
            arch="aarch64",
            cpu_cores=4,
            memory_mb=4096,
            disk_mb=32000,
            runtimes=["simulated"],
            network=NetworkInfo(link="ethernet", bandwidth_mbps=100),
        )
        packets.append(
            wire.publish(topics.node_status(spec.site, spec.node), encode(status), retain=True)
        )
        packets.append(
            wire.publish(topics.node_capabilities(spec.site, spec.node), encode(caps), retain=True)
        )
    return packets


def telemetry_packets(root: str, nodes: int, sites: int, variants: int = VARIANTS) -> list[bytes]:
    """Round-robin order: node 0 variant 0, node 1 variant 0, ..., node 0 variant 1, ..."""
    topics = Topics(root)
    specs = fleet_specs(nodes, sites)
    packets = []
    for v in range(variants):
        for i, spec in enumerate(specs):
            message = Telemetry(
                node=spec.node,
                site=spec.site,
                ts=1_700_000_000.0 + v,
                cpu_pct=10.0 + (i + 7 * v) % 80,
                memory_pct=30.0 + (i + 3 * v) % 50,
                load1=0.1 * ((i + v) % 20),
                latency_ms={"broker": 2.0 + (v % 2) * 0.05},
                workloads={
                    "app-0": WorkloadUsage(cpu_pct=1.0 + v, memory_mb=32.0),
                    "app-1": WorkloadUsage(cpu_pct=2.0 + v, memory_mb=48.0),
                },
            )
            packets.append(
                wire.publish(topics.node_telemetry(spec.site, spec.node), encode(message))
            )
    return packets


def _connect(settings: BrokerSettings) -> socket.socket:
    sock = socket.create_connection((settings.host, settings.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(wire.connect(f"bench-pub-{time.monotonic_ns() % 10**9}", keepalive=600))
    reader = wire.FrameReader()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frames = reader.feed(sock.recv(4096))
        if frames:
            code = wire.connack_code(frames[0])
            if code != 0:
                raise SystemExit(f"ingest-publisher: broker refused the connection (code {code})")
            return sock
    raise SystemExit("ingest-publisher: no CONNACK within 10 s")


def publish_for(sock: socket.socket, packets: list[bytes], rate: float, seconds: float) -> int:
    """Send packets round-robin for ``seconds``; at ``rate`` per second, or flat out if 0."""
    sent = 0
    started = time.monotonic()
    end = started + seconds
    count = len(packets)
    if rate <= 0:
        blobs = [
            (b"".join(packets[i : i + 500]), len(packets[i : i + 500]))
            for i in range(0, count, 500)
        ]
        while time.monotonic() < end:
            for blob, n in blobs:
                sock.sendall(blob)
                sent += n
        return sent
    cursor = 0
    while True:
        now = time.monotonic()
        if now >= end:
            return sent
        due = int((now - started) * rate) - sent
        if due > 0:
            chunk = [packets[(cursor + k) % count] for k in range(due)]
            sock.sendall(b"".join(chunk))
            cursor = (cursor + due) % count
            sent += due
        time.sleep(TICK_S)


def serve(sock: socket.socket, root: str, nodes: int, sites: int) -> None:
    """Run the commands read from stdin, one JSON line of result each, until EOF:
    ``announce`` (status and capabilities of every node) or ``load RATE SECONDS``."""
    announce = b"".join(announce_packets(root, nodes, sites))
    telemetry = telemetry_packets(root, nodes, sites)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        started = time.monotonic()
        if words == ["announce"]:
            sock.sendall(announce)
            sent = 2 * nodes
        elif len(words) == 3 and words[0] == "load":
            sent = publish_for(sock, telemetry, float(words[1]), float(words[2]))
        else:
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        elapsed = time.monotonic() - started
        print(json.dumps({"sent": sent, "seconds": round(elapsed, 4)}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="telemetry load for the ingest benchmark")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    args = parser.parse_args(argv)
    if args.nodes <= 0 or args.sites <= 0:
        print("ingest-publisher: --nodes and --sites must be positive", file=sys.stderr)
        return 2
    try:
        sock = _connect(BrokerSettings.from_url(args.broker))
    except OSError as exc:
        print(f"ingest-publisher: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    with sock:
        serve(sock, args.root, args.nodes, args.sites)
        sock.sendall(wire.DISCONNECT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
