"""One listening port of a local proxy: accept, connect to an endpoint, relay bytes.

The I/O shell around :class:`~edgefleet_agent.proxy.balancer.Balancer`. For each accepted
connection it asks the balancer for an endpoint and connects; a connect that fails (refused,
unreachable, or slower than ``connect_timeout_s``) is reported to the balancer — which sets
that endpoint aside — and the next endpoint is tried. The client's socket is not read
until an upstream connection exists, so a retry is invisible to it. When every endpoint
failed, the client's connection is closed without a byte.

Relaying uses asyncio protocols rather than streams (no task or buffer object per
direction: the proxy's cost per connection is what the bench measures), with flow control
both ways (a side that cannot keep up pauses reading on the other) and half-close (EOF in
one direction is passed on while the other keeps flowing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import cast

from edgefleet_agent.proxy.balancer import Balancer, Key, key_of

log = logging.getLogger("edgefleet.agent.proxy")


class _Side(asyncio.Protocol):
    """One socket of a relayed pair; forwards what it receives to ``peer``."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.received = 0
        self._on_lost = on_lost
        self._eof = False
        self._pending: list[bytes] = []
        self.lost = False  # the socket is gone (possibly before anyone paired with it)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed, not isinstance: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        peer = self.peer
        if peer is None or peer.transport is None:
            self._pending.append(data)  # the upstream side is still connecting
            return
        peer.transport.write(data)

    def eof_received(self) -> bool:
        self._eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            if peer._eof:
                # Both directions have ended (an HTTP/1.0 exchange: the server closes, then
                # the client): nothing can flow any more. Left half-open, neither socket
                # ever saw connection_lost, and every relayed connection leaked two file
                # descriptors until the agent could accept no more.
                peer.transport.close()
                return False  # and close ours
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
        return True  # keep our writing side open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()
        self._on_lost()

    # Flow control: when our transport's buffer is full, stop reading from the peer.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def joined(self, peer: _Side) -> None:
        """Paired with ``peer`` (whose transport exists): flush what arrived meanwhile."""
        self.peer = peer
        assert peer.transport is not None
        for data in self._pending:
            peer.transport.write(data)
        self._pending = []
        if self._eof and peer.transport.can_write_eof():
            peer.transport.write_eof()


class Listener:
    """Serves ``port`` on every host of ``hosts`` for the service port ``port_name``."""

    def __init__(
        self,
        balancer: Balancer,
        *,
        port_name: str,
        hosts: tuple[str, ...],
        port: int,
        connect_timeout_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.balancer = balancer
        self.port_name = port_name
        self.hosts = hosts
        self.port = port
        self._connect_timeout_s = connect_timeout_s
        self._monotonic = monotonic
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.Transport] = set()

    @property
    def open_sockets(self) -> int:
        """Client and endpoint sockets this listener holds open right now."""
        return len(self._open)

    async def start(self) -> None:
        """Listen on every host; raises ``OSError`` (and listens nowhere) if one fails."""
        loop = asyncio.get_running_loop()
        try:
            for host in self.hosts:
                server = await loop.create_server(
                    self._client_side, host, self.port, reuse_address=True, backlog=512
                )
                self._servers.append(server)
        except OSError:
            await self.close()
            raise

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in list(self._open):
            transport.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []

    def _client_side(self) -> _Side:
        holder: list[_Side] = []
        client = _Side(on_lost=lambda: self._forget(holder))
        holder.append(client)
        task = asyncio.get_running_loop().create_task(self._connect(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client

    def _forget(self, holder: list[_Side]) -> None:
        for side in holder:
            if side.transport is not None:
                self._open.discard(side.transport)

    async def _connect(self, client: _Side) -> None:
        """Find an endpoint that accepts, then pair the two sides."""
        await asyncio.sleep(0)  # connection_made has run: the client transport exists
        transport = client.transport
        if transport is None or transport.is_closing():
            return
        self._open.add(transport)
        transport.pause_reading()  # nothing is read until upstream is there
        loop = asyncio.get_running_loop()
        balancer = self.balancer
        tried: list[Key] = []
        while True:
            endpoint = balancer.choose(self._monotonic(), tried)
            if endpoint is None:
                log.warning("proxy port %d: no endpoint left to try (%d tried)", self.port,
                            len(tried))  # fmt: skip
                transport.close()  # every endpoint failed: close without a byte
                return
            port = endpoint.ports.get(self.port_name, endpoint.port)
            started = self._monotonic()
            upstream = _Side(on_lost=_nothing)
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    await loop.create_connection(_factory(upstream), endpoint.address, port)
                if upstream.lost:
                    # Accepted, then reset before we paired (a replica killed with the
                    # connection in its backlog): nothing reached the client, so this is
                    # a failed connect like any other, and another endpoint is tried.
                    raise ConnectionResetError("reset before the relay started")
            except (OSError, TimeoutError) as exc:
                aside = balancer.failed(endpoint, self._monotonic())
                log.info("proxy port %d: connect to %s (%s:%d) failed (%r); set aside %g s",
                         self.port, endpoint.replica or endpoint.node, endpoint.address, port,
                         exc, aside)  # fmt: skip
                tried.append(key_of(endpoint))
                continue
            break
        balancer.connected(endpoint, self._monotonic() - started)
        assert upstream.transport is not None
        self._open.add(upstream.transport)
        done = asyncio.get_running_loop().create_future()

        def lost(side: _Side) -> None:
            assert side.transport is not None
            self._open.discard(side.transport)
            if not done.done():
                done.set_result(None)

        upstream._on_lost = lambda: lost(upstream)
        client._on_lost = lambda: lost(client)
        if transport.is_closing():  # the client gave up while we connected
            upstream.transport.close()
        else:
            upstream.joined(client)
            client.joined(upstream)
            transport.resume_reading()
        try:
            await done
        finally:
            balancer.closed(endpoint, client.received + upstream.received)
            upstream.transport.close()
            transport.close()


def _nothing() -> None:
    pass


def _factory(side: _Side) -> Callable[[], _Side]:
    return lambda: side
