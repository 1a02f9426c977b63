"""An embedded pure-Python MQTT broker (amqtt) for machines without mosquitto.

``make demo`` must work on a machine that has only Python. When mosquitto is not installed
the demo runs this module as its own process
(``python -m edgefleet_orchestrator.demo.embedded_broker --port N``): a separate process can
be stopped with one signal and never shares an event loop with the orchestrator it serves.
:func:`start_embedded_broker` is the launcher the demo calls.

It is a development broker, loopback-only and anonymous. Its limits, measured against our
Session and noted in the README: MQTT 3.1.1 only (a v5 CONNECT is refused, and the Session's
``auto`` mode falls back to 3.1.1 at once), retained messages live in memory only (a restart
forgets the fleet's retained state; the orchestrator republishes every desired document on
start, the agents their status when they reconnect), and no TLS, passwords or ACLs here.
Wills (retained, QoS 1) and QoS 1 delivery work as the wire contract needs.

Two amqtt 0.12 bugs are worked around here, in the broker process only:

* :func:`refuse_v5_connects_promptly`: amqtt parses an MQTT 5 CONNECT that carries a will
  as if it were 3.1.1, misreads the will's property block as a string length and waits for
  bytes that never come, so the client's v5 attempt hangs for its whole connect timeout
  (10 s for our Session) before falling back to 3.1.1.
* :func:`send_retained_only_for_own_subscriptions`: on every CONNECT amqtt sends the new
  client the retained messages matching *every* topic filter any client ever subscribed to
  (its loop meant for resumed sessions walks the broker-wide table), so an agent would get
  other nodes' retained documents and a CLI the whole fleet's state, unasked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def broker_config(port: int, host: str = LOOPBACK) -> dict[str, Any]:
    """The amqtt configuration: one TCP listener, anonymous clients, no $SYS chatter and no
    per-packet logging (both cost CPU the demo's agents need on a 2-core machine)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


MQTT_311_LEVEL = 4


def connect_protocol_level(body: bytes) -> int | None:
    """The protocol level of a CONNECT packet's body (what follows the fixed header), or
    ``None`` when the body is too short to say. The body opens with the length-prefixed
    protocol name, and the level byte follows it."""
    if len(body) < 2:
        return None
    name_length = int.from_bytes(body[:2], "big")
    level_at = 2 + name_length
    return body[level_at] if len(body) > level_at else None


def neutered_connect_body(body: bytes) -> bytes:
    """A CONNECT body any 3.1.1 parser reads to the end: the same protocol name, level and
    keepalive, only the clean-session flag, and a one-character client id. The level is kept,
    so the broker still refuses it ("unacceptable protocol version") — now at once."""
    name_length = int.from_bytes(body[:2], "big")
    level_at = 2 + name_length
    keepalive = body[level_at + 2 : level_at + 4].rjust(2, b"\0")
    return body[: level_at + 1] + bytes([0x02]) + keepalive + b"\x00\x01x"


def refuse_v5_connects_promptly() -> None:
    """Patch amqtt's CONNECT decoder (in this broker process only): read the whole packet
    first, and hand anything that is not MQTT 3.1.1 to amqtt in a shape it can parse, so it
    answers with its usual "unacceptable protocol version" CONNACK instead of hanging."""
    from amqtt.adapters import BufferReader
    from amqtt.codecs_amqtt import read_or_raise
    from amqtt.errors import NoDataError
    from amqtt.mqtt.connect import ConnectPacket
    from amqtt.mqtt.packet import MQTTFixedHeader

    original = ConnectPacket.from_stream

    async def from_stream(
        reader: Any, fixed_header: Any = None, variable_header: Any = None
    ) -> Any:
        if fixed_header is not None or variable_header is not None:
            return await original(reader, fixed_header, variable_header)
        header = await MQTTFixedHeader.from_stream(reader)
        if header is None:
            raise NoDataError("No data to decode MQTT packet fixed header")
        body = await read_or_raise(reader, header.remaining_length)
        if connect_protocol_level(body) not in (None, MQTT_311_LEVEL):
            body = neutered_connect_body(body)
            header = MQTTFixedHeader(header.packet_type, header.flags, len(body))
        return await original(BufferReader(body), header)

    ConnectPacket.from_stream = from_stream


def send_retained_only_for_own_subscriptions() -> None:
    """Patch amqtt so retained messages go to a client only for filters it subscribed to.

    amqtt records a subscription before sending the retained messages that match it, so a
    real SUBSCRIBE still gets them; the broker-wide replay on CONNECT finds nothing of the
    client's own (our clients use clean sessions) and sends nothing — as MQTT specifies.
    """
    from amqtt.broker import Broker

    original = Broker._publish_retained_messages_for_subscription

    async def publish_retained(self: Any, subscription: tuple[str, int], session: Any) -> None:
        subscribers = self._subscriptions.get(subscription[0], [])
        if any(sub.client_id == session.client_id for sub, _ in subscribers):
            await original(self, subscription, session)

    Broker._publish_retained_messages_for_subscription = publish_retained


async def serve(port: int, host: str = LOOPBACK) -> None:
    """Run the broker until SIGTERM/SIGINT, then shut it down cleanly."""
    from amqtt.broker import Broker

    refuse_v5_connects_promptly()
    send_retained_only_for_own_subscriptions()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = Broker(broker_config(port, host))
    await broker.start()
    print(f"embedded MQTT broker (amqtt, MQTT 3.1.1) listening on {host}:{port}", flush=True)
    await stop.wait()
    await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgefleet_orchestrator.demo.embedded_broker",
        description="A development MQTT 3.1.1 broker (amqtt): loopback, anonymous, in memory.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--log-level", default="WARNING", help="Python logging level")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be 1-65535, got {args.port}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # amqtt logs every client's abrupt disconnect (a killed agent) as an error with a trace:
    # expected in a demo that kills agents on purpose, so keep it out of the console.
    logging.getLogger("amqtt").setLevel(max(logging.CRITICAL, logging.getLogger().level))
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args.port, args.host))
    except OSError as exc:
        print(f"embedded broker: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


# -- the launcher ---------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(
    proc: subprocess.Popen[bytes], host: str, port: int, *, timeout_s: float, log: Path
) -> None:
    """Return once ``host:port`` accepts connections; raise with the child's log if it died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"broker exited with code {proc.returncode}: {text.strip()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    stop_process(proc)
    raise RuntimeError(f"broker did not listen on {host}:{port} within {timeout_s:g} s")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; reaps the child either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


@dataclass
class BrokerProcess:
    """A broker we started: ``url`` is what clients connect to; ``kind`` says which one."""

    process: subprocess.Popen[bytes]
    kind: str
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


def start_embedded_broker(
    workdir: Path, *, port: int | None = None, timeout_s: float = 20.0
) -> BrokerProcess:
    """Start the embedded broker as a child process on a free loopback port and wait until it
    listens. Its output goes to ``workdir/embedded-broker.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "embedded-broker.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log_file:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgefleet_orchestrator.demo.embedded_broker",
                "--port",
                str(port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    wait_listening(proc, LOOPBACK, port, timeout_s=timeout_s, log=log_path)
    return BrokerProcess(proc, "amqtt", LOOPBACK, port, log_path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
