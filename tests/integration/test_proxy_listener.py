"""The agent's proxies on real sockets (no broker): a proxy port that cannot be bound is
reported ``failed`` with its reason and one event while the other proxies work; it
listens once the port is free; a dead endpoint is retried elsewhere before any byte
reaches the client; catalogs and proxy ports survive a restart through the local store."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edgefleet_agent.proxy.balancer import Balancer
from edgefleet_agent.proxy.listener import Listener
from edgefleet_agent.proxy.proxies import Proxies, ProxyConfig
from edgefleet_agent.store import LocalStore
from edgefleet_protocol import Endpoint, ServiceEndpoints, WorkloadSpec
from harness.mosquitto import free_port


@pytest.fixture
async def backend() -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


def entry(service: str, *ports: int) -> ServiceEndpoints:
    endpoints = [Endpoint(node=f"n{i}", address="127.0.0.1", port=p, replica=f"{service}-{i}",
                          ports={"main": p}) for i, p in enumerate(ports)]  # fmt: skip
    return ServiceEndpoints(service=service, app=service, endpoints=endpoints, updated_at=1,
                            revision=1, ports={"main": 1})  # fmt: skip


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_a_port_that_cannot_be_bound_fails_alone_and_recovers(
    tmp_path: Path, backend: int
) -> None:
    low = free_port()
    events: list[tuple[str, str]] = []

    async def on_failure(service: str, reason: str) -> None:
        events.append((service, reason))

    store = LocalStore(tmp_path / "state")
    store.set_proxy_port("blocked", "main", low)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", low))
    squatter.listen()
    proxies = Proxies(ProxyConfig(site="s", region=None, port_range=(low, low + 30)),
                      store=store, on_failure=on_failure)  # fmt: skip
    try:
        dead = free_port()  # nothing listens there: connects are refused
        proxies.catalog("blocked", entry("blocked", backend))
        proxies.catalog("open", entry("open", dead, backend))
        await proxies.reconcile({"blocked", "open"})
        report = proxies.report()
        assert report["blocked"].state == "failed"
        assert f"cannot listen on port {low}" in report["blocked"].message
        assert report["open"].state == "listening"
        assert events == [("blocked", report["blocked"].message)]
        port = report["open"].port
        assert port is not None and port != low
        # Every request succeeds although one endpoint refuses connections.
        assert [await ask(port) for _ in range(10)] == [b"echo:hi"] * 10
        await proxies.reconcile({"blocked", "open"})
        assert len(events) == 1  # a failure that stays is reported once
        env = proxies.env_for(WorkloadSpec(runtime="process", command=["x"], uses=["open"]))
        assert env == {"EDGEFLEET_SERVICE_OPEN_HOST": "127.0.0.1",
                       "EDGEFLEET_SERVICE_OPEN_PORT": str(port),
                       "EDGEFLEET_SERVICE_OPEN_PORT_MAIN": str(port)}  # fmt: skip
        squatter.close()
        await proxies.reconcile({"blocked", "open"})
        assert proxies.report()["blocked"].state == "listening"
        assert await ask(low) == b"echo:hi"
    finally:
        squatter.close()
        await proxies.close()
        store.close()

    again_store = LocalStore(tmp_path / "state")
    again = Proxies(ProxyConfig(site="s", region=None, port_range=(low, low + 30)),
                    store=again_store, on_failure=on_failure)  # fmt: skip
    try:
        await again.reconcile({"open"})  # after a reboot: no broker, same port
        assert again.report()["open"].port == port
        assert await ask(port) == b"echo:hi"
    finally:
        await again.close()
        again_store.close()


async def test_finished_exchanges_leave_no_socket_open(backend: int) -> None:
    """The endpoint answers and closes, then the client closes (an HTTP/1.0 exchange): both
    directions have ended, so the proxy closes both sockets. Left half-open, every relayed
    connection kept two descriptors until the agent could accept no more."""
    balancer = Balancer(site="s", region=None, rng=random.Random(1))
    balancer.update(entry("svc", backend))
    listener = Listener(balancer, port_name="main", hosts=("127.0.0.1",), port=free_port())
    await listener.start()
    try:
        assert [await ask(listener.port) for _ in range(50)] == [b"echo:hi"] * 50
        for _ in range(200):
            if listener.open_sockets == 0:
                break
            await asyncio.sleep(0.01)
        assert listener.open_sockets == 0
    finally:
        await listener.close()
